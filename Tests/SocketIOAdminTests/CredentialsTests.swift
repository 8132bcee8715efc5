import NIOConcurrencyHelpers
import SocketIO
import Testing

@testable import SocketIOAdmin

@Suite struct CredentialsTests {
    /// crypt_blowfish's own test vector: the hash of "U*U".
    static let vector = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"
    /// "s3cret" at cost 4, as `htpasswd -B -C 4` or Node's bcrypt would make it.
    static let cheap = "$2b$04$5NDorK4KSAwgwlgXsYmJFOkx4pnwoXziBzXk/ZNOUxHQm5vmI5GQS"

    @Test func bcryptHashesAreCheckedAgainstThePassword() async throws {
        let vector = try SocketIOAdminCredentials(username: "admin", password: .bcrypt(Self.vector))
        #expect(await vector.verify(username: "admin", password: "U*U"))
        #expect(!(await vector.verify(username: "admin", password: "U*V")))
        #expect(!(await vector.verify(username: "admin", password: "")))
        let cheap = try SocketIOAdminCredentials(username: "admin", password: .bcrypt(Self.cheap))
        #expect(await cheap.verify(username: "admin", password: "s3cret"))
        #expect(!(await cheap.verify(username: "root", password: "s3cret")))
        // A NUL would cut the C string: "s3cret\0anything" must not pass as "s3cret".
        #expect(!(await cheap.verify(username: "admin", password: "s3cret\0anything")))
    }

    @Test func bcryptChecksRunOnlyForTheRightUserAndNeverTooManyAtOnce() async throws {
        let credentials = try SocketIOAdminCredentials(username: "admin", password: .bcrypt(Self.cheap))
        let none = BcryptChecks(threads: 1, limit: 0)  // any check asked for would be refused
        #expect(!(await credentials.verify(username: "root", password: "s3cret", checks: none)))
        #expect(!(await credentials.verify(username: "admin", password: "s3cret", checks: none)))

        // Two checks held on the pool's thread fill a limit of two: a third is refused at
        // once, without waiting for them.
        let checks = BcryptChecks(threads: 1, limit: 2)
        let gate = ConditionLock(value: 0)
        let held = (0..<2).map { _ in
            Task { await checks.run { gate.lock(whenValue: 1); gate.unlock(); return true } }
        }
        while checks.pending < 2 { await Task.yield() }
        #expect(await checks.run { true } == nil)
        gate.lock()
        gate.unlock(withValue: 1)
        for task in held { #expect(await task.value == true) }
        #expect(await checks.run { true } == true)
        #expect(checks.pending == 0)
    }

    @Test func plainPasswordsAreComparedWhole() async throws {
        let credentials = try SocketIOAdminCredentials(username: "admin", password: .plain("secret"))
        #expect(await credentials.verify(username: "admin", password: "secret"))
        for (user, password) in [("admin", "secre"), ("admin", "secret "), ("admin", ""), ("admi", "secret"), ("", "")] {
            #expect(!(await credentials.verify(username: user, password: password)), "\(user):\(password)")
        }
    }

    @Test func constantTimeEqualityIsEquality() {
        let cases: [([UInt8], [UInt8], Bool)] = [
            ([], [], true), ([1], [1], true), ([1], [2], false), ([1, 2], [1], false), ([], [0], false), ([0], [], false),
            // Lengths 256 apart: the length check must not wrap to equal.
            (Array(repeating: 7, count: 256), [], false),
        ]
        for (a, b, equal) in cases { #expect(SocketIOAdminCredentials.constantTimeEqual(a, b) == equal, "\(a.count) \(b.count)") }
    }

    @Test func aHashThatIsNotBcryptsIsRefusedAtOnce() {
        for hash in [
            "", "secret", "$1$abc$def", String(Self.cheap.dropLast()), Self.cheap + "x", "$2x$04$" + Self.cheap.dropFirst(7),
            "$2b$03$" + Self.cheap.dropFirst(7), "$2b$32$" + Self.cheap.dropFirst(7), "$2b$04$" + String(Self.cheap.dropFirst(7).map { $0 == "Q" ? "!" : $0 }),
        ] {
            #expect(throws: SocketIOAdminCredentials.InvalidHash.self, "\(hash)") {
                try SocketIOAdminCredentials(username: "admin", password: .bcrypt(hash))
            }
        }
        #expect(SocketIOAdminCredentials.isBcryptHash(Self.vector))
        #expect(SocketIOAdminCredentials.isBcryptHash("$2y$05$360IRijtI3bHJUlOOe2Exuw59mKCsAjBYa7.SS4wO1jfNvT6OsFXa"))
    }

    @Test func statisticsBecomeTheEventsBetweenSamples() {
        var statistics = AdminStatistics()
        func sample(_ opened: Int, _ closed: Int, _ packets: Int) -> SocketIOServerStatistics {
            .init(clients: 0, pollingClients: 0, clientsOpened: opened, clientsClosed: closed, packetsIn: packets, packetsOut: 0, bytesIn: 0, bytesOut: 0)
        }
        #expect(statistics.aggregatedEvents(sample(5, 1, 10), timestamp: 1_000).isEmpty)  // nothing to compare with yet
        let events = statistics.aggregatedEvents(sample(8, 1, 15), timestamp: 3_456)
        #expect(events == [
            ["timestamp": 3_000, "type": "rawConnection", "count": 3],
            ["timestamp": 3_000, "type": "packetsIn", "count": 5],
        ])
        #expect(statistics.aggregatedEvents(sample(8, 1, 15), timestamp: 5_000).isEmpty)
    }

    @Test func timesAreWrittenAsJavaScriptDatesSerialise() {
        #expect(AdminClock.iso8601(milliseconds: 0) == "1970-01-01T00:00:00.000Z")
        #expect(AdminClock.iso8601(milliseconds: 1_796_688_094_561) == "2026-12-08T00:01:34.561Z")
        #expect(AdminClock.iso8601(milliseconds: 951_782_400_007) == "2000-02-29T00:00:00.007Z")
    }
}

@Suite struct EventPreviewTests {
    @Test func smallEventsAreShownWholeAndLargeOnesByName() {
        let small: [JSONValue] = ["chat message", "hello", ["n": 1, "tags": ["a", "b"]], .null, true]
        #expect(AdminEventPreview.of(small, limit: 2048) == small)
        let large: [JSONValue] = ["chat message", .string(String(repeating: "x", count: 3000))]
        #expect(AdminEventPreview.of(large, limit: 2048) == ["chat message", "(arguments over 2048 bytes, not shown)"])
        let wide: [JSONValue] = ["list", .array(Array(repeating: 1, count: 1000))]
        #expect(AdminEventPreview.of(wide, limit: 2048) == ["list", "(arguments over 2048 bytes, not shown)"])
        #expect(AdminEventPreview.of(["empty"], limit: 0) == ["empty"])
    }

    /// A hundred thousand keys, as a client may send: not shown (and the walk stops once
    /// the budget is spent, since it runs once per recipient).
    @Test func aHugeEventIsShownByName() {
        var object = JSONObject()
        for index in 0..<100_000 { object["k\(index)"] = .number(Double(index)) }
        #expect(AdminEventPreview.of(["big", .object(object)], limit: 2048) == ["big", "(arguments over 2048 bytes, not shown)"])
    }
}
