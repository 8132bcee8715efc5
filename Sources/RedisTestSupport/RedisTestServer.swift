import Foundation
import NIOCore
import NIOPosix
import Redis

#if canImport(Glibc)
import Glibc
#endif

/// A throwaway `redis-server` (Debian's, which the test command installs) on a free port,
/// without persistence, for tests; `stop()` and `start()` play an outage.
public final class RedisTestServer: @unchecked Sendable {
    // @unchecked Sendable: `port` and `directory` are immutable; `pid` is changed only by
    // `start()` and `stop()`, which a test calls from one task at a time.

    public let port: Int
    public let directory: URL
    private var pid: pid_t?

    public init() throws {
        let socket = try ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(host: "127.0.0.1", port: 0).wait()
        port = socket.localAddress!.port!
        try socket.close().wait()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("redis-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    public func start() throws {
        // posix_spawn and waitpid rather than Foundation's Process, whose
        // waitUntilExit() never returned on a test's cooperative thread here.
        let arguments = [
            "/usr/bin/redis-server", "--port", "\(port)", "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--enable-debug-command", "local", "--dir", directory.path, "--logfile", directory.appendingPathComponent("log").path,
        ]
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

    public var url: String { "redis://127.0.0.1:\(port)" }
}
