import Atomics
import CCrypt
import NIOPosix

/// The user name and password the admin UI must present (basic authentication): the
/// `username` and `password` of its CONNECT payload.
public struct SocketIOAdminCredentials: Sendable {
    /// How the password is kept.
    public enum Password: Sendable {
        /// The password itself, compared in constant time.
        case plain(String)
        /// A bcrypt hash (`$2a$`, `$2b$` or `$2y$`, as the reference's `auth.password`),
        /// checked on a thread pool: a bcrypt check takes tens of milliseconds of CPU, which
        /// must not stall an event loop.
        case bcrypt(String)
    }

    /// A hash that is not bcrypt's.
    public struct InvalidHash: Error, CustomStringConvertible {
        /// What was wrong with the hash.
        public var description: String { "the admin UI password hash must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 4 to 31)" }
    }

    /// The user name.
    public var username: String
    /// The password, or its hash.
    public var password: Password

    /// Credentials with `username` and `password`; throws `InvalidHash` for a `.bcrypt`
    /// string that is not a bcrypt hash (checked now rather than at every login).
    public init(username: String, password: Password) throws {
        if case .bcrypt(let hash) = password, !Self.isBcryptHash(hash) { throw InvalidHash() }
        self.username = username
        self.password = password
    }

    /// `$2b$10$` and 53 characters of bcrypt's base 64: salt and checksum.
    static func isBcryptHash(_ hash: String) -> Bool {
        let bytes = Array(hash.utf8)
        guard bytes.count == 60, bytes[0] == UInt8(ascii: "$"), bytes[1] == UInt8(ascii: "2"),
            [UInt8(ascii: "a"), UInt8(ascii: "b"), UInt8(ascii: "y")].contains(bytes[2]), bytes[3] == UInt8(ascii: "$"),
            bytes[6] == UInt8(ascii: "$"), let cost = Int(String(decoding: bytes[4..<6], as: UTF8.self)), (4...31).contains(cost)
        else { return false }
        return bytes[7...].allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "/")
        }
    }

    /// Whether `username` and `password` are these credentials. A plain password is
    /// compared whatever the user name gives, so that the time taken tells nothing of which
    /// was wrong; a bcrypt check runs only for the right user name, as the reference's (each
    /// costs tens of milliseconds of CPU, which a stranger must not be able to ask for).
    func verify(username: String, password: String, checks: BcryptChecks = .shared) async -> Bool {
        let userMatches = Self.constantTimeEqual(Array(username.utf8), Array(self.username.utf8))
        switch self.password {
        case .plain(let expected):
            return Self.constantTimeEqual(Array(password.utf8), Array(expected.utf8)) && userMatches
        case .bcrypt(let hash):
            guard userMatches else { return false }
            return await checks.run { Self.bcryptMatches(password, hash: hash) } ?? false
        }
    }

    /// Compares every byte of the longer of the two, so the time depends only on the lengths.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var difference = UInt8(truncatingIfNeeded: a.count ^ b.count) | (a.count == b.count ? 0 : 1)
        for index in 0..<max(a.count, b.count) {
            difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
        }
        return difference == 0
    }

    /// bcrypt of `password` with the salt and cost of `hash`, compared with `hash`. Blocks
    /// for the whole computation: call it on a thread pool.
    static func bcryptMatches(_ password: String, hash: String) -> Bool {
        // A NUL would end the C string early: such a password cannot be the one hashed.
        guard !password.utf8.contains(0) else { return false }
        let data = UnsafeMutablePointer<crypt_data>.allocate(capacity: 1)
        defer { data.deallocate() }
        data.initialize(to: crypt_data())
        guard let result = crypt_r(password, hash, data) else { return false }
        return constantTimeEqual(Array(String(cString: result).utf8), Array(hash.utf8))
    }
}

/// Where bcrypt checks run: a thread pool of their own, never an event loop, and a bound on
/// how many may wait, so that a flood of logins costs a core at most and is refused past it.
final class BcryptChecks: Sendable {
    private let pool: NIOThreadPool
    private let waiting = ManagedAtomic(0)
    /// The most checks running or queued; further ones fail at once.
    let limit: Int

    init(threads: Int, limit: Int) {
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
        self.limit = limit
    }

    /// One thread, at most 8 logins checked or waiting: a login waits for at most 8 checks.
    static let shared = BcryptChecks(threads: 1, limit: 8)

    /// How many checks are running or queued now.
    var pending: Int { waiting.load(ordering: .relaxed) }

    /// `check`'s answer, or nil when too many are waiting already.
    func run(_ check: @escaping @Sendable () -> Bool) async -> Bool? {
        guard waiting.loadThenWrappingIncrement(ordering: .relaxed) < limit else {
            waiting.wrappingDecrement(ordering: .relaxed)
            return nil
        }
        defer { waiting.wrappingDecrement(ordering: .relaxed) }
        return try? await pool.runIfActive(check)
    }
}
