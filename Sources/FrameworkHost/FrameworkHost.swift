import EngineIO
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import SocketIOHummingbird

/// Which host serves a test server (the conformance servers, the testbed): the engine's own
/// listener, or a web framework with the engine mounted in it. The official suites and the
/// interop tests must pass on every one of them.
public enum FrameworkHost: String, CaseIterable, Sendable {
    case nio
    case hummingbird

    /// `--framework NAME` from the command line, else `FRAMEWORK`, else `nio`; exits with a
    /// message for an unknown name.
    public static func fromCommandLine() -> FrameworkHost {
        let arguments = CommandLine.arguments
        var name = ProcessInfo.processInfo.environment["FRAMEWORK"] ?? "nio"
        if let index = arguments.firstIndex(of: "--framework"), index + 1 < arguments.count {
            name = arguments[index + 1]
        }
        guard let host = FrameworkHost(rawValue: name) else {
            let known = allCases.map(\.rawValue).joined(separator: ", ")
            FileHandle.standardError.write(Data("unknown --framework \(name): one of \(known)\n".utf8))
            exit(2)
        }
        return host
    }

    /// Serves `engine` on `host:port` until the process is stopped, announcing itself as
    /// `name` once it listens. Other paths get the files of `files` (a folder), if given:
    /// through `fallback` on the engine's own listener, through the framework's file
    /// middleware otherwise.
    public func serve(_ engine: EngineIOServer, host: String, port: Int, name: String, files: String? = nil) async throws {
        switch self {
        case .nio:
            let channel = try await engine.bind(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton)
            print("\(name) listening on \(channel.localAddress.map { "\($0)" } ?? "?") (nio)")
            try await channel.closeFuture.get()
        case .hummingbird:
            let router = Router()
            if let files { router.add(middleware: FileMiddleware(files, searchForIndexHtml: true)) }
            router.addEngineIO(engine)
            let app = Application(
                router: router,
                server: .http1EngineIO(engine, router: router),
                configuration: .init(address: .hostname(host, port: port), serverName: name),
                onServerRunning: { channel in
                    print("\(name) listening on \(channel.localAddress.map { "\($0)" } ?? "?") (hummingbird)")
                }
            )
            try await app.runService()
        }
    }
}
