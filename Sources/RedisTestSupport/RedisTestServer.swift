import Foundation
import NIOCore
import NIOPosix
import Redis

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `redis-server` (Debian's, which the test command installs) on a free port,
/// without persistence, for tests; `stop()` and `start()` play an outage. It can also be a
/// replica of another (`replicaOf:`), or a sentinel (``sentinel(monitoring:name:)``, from
/// Debian's `redis-sentinel`).
public final class RedisTestServer: @unchecked Sendable {
    // @unchecked Sendable: `port`, `directory` and `arguments` are immutable; `pid` is
    // changed only by `start()` and `stop()`, which a test calls from one task at a time.

    public let port: Int
    public let directory: URL
    private let arguments: [String]
    private var pid: pid_t?

    /// A server on a free port; with `replicaOf`, a replica of the server on that port.
    public convenience init(replicaOf primary: Int? = nil) throws {
        try self.init { port, directory in
            [
                "/usr/bin/redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no", "--enable-debug-command", "local", "--dir", directory.path, "--logfile", directory.appendingPathComponent("log").path,
            ] + (primary.map { ["--replicaof", "127.0.0.1", "\($0)"] } ?? [])
        }
    }

    /// A sentinel on a free port that monitors the primary on port `primary` as `name`, alone
    /// (quorum 1), and fails it over after a second without an answer.
    public static func sentinel(monitoring primary: Int, name: String) throws -> RedisTestServer {
        try RedisTestServer { port, directory in
            // The sentinel rewrites its configuration file as it learns the topology.
            let file = directory.appendingPathComponent("sentinel.conf")
            let configuration = """
                port \(port)
                bind 127.0.0.1
                dir \(directory.path)
                logfile \(directory.appendingPathComponent("log").path)
                sentinel monitor \(name) 127.0.0.1 \(primary) 1
                sentinel down-after-milliseconds \(name) 1000
                sentinel failover-timeout \(name) 3000

                """
            if !FileManager.default.fileExists(atPath: file.path) {
                _ = FileManager.default.createFile(atPath: file.path, contents: Data(configuration.utf8))
            }
            return ["/usr/bin/redis-sentinel", file.path]
        }
    }

    private init(arguments: (Int, URL) -> [String]) throws {
        let socket = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        port = socket.localAddress!.port!
        try socket.close().wait()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        self.arguments = arguments(port, directory)
        try start()
    }

    public func start() throws {
        // posix_spawn and waitpid rather than Foundation's Process, whose
        // waitUntilExit() never returned on a test's cooperative thread here.
        var argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        guard posix_spawn(&pid, arguments[0], nil, nil, &argv, environ) == 0 else { throw RedisError.disconnected }
        self.pid = pid
        // Ready when it answers.
        for _ in 0..<100 {
            if let connection = try? RedisConnection.connect(host: "127.0.0.1", port: port, group: MultiThreadedEventLoopGroup.singleton).wait() {
                connection.close()
                return
            }
            usleep(50_000)
        }
        throw RedisError.disconnected
    }

    public func stop() {
        guard let pid else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        self.pid = nil
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-server") }

    /// Whether Debian's `redis-sentinel` is here too.
    public static var isSentinelInstalled: Bool { isInstalled && FileManager.default.isExecutableFile(atPath: "/usr/bin/redis-sentinel") }

    public var url: String { "redis://127.0.0.1:\(port)" }
}
