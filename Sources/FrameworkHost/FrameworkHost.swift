import EngineIO
import Foundation
import Hummingbird
import NIOCore
import NIOPosix
import SocketIOHummingbird
import SocketIOVapor
import Vapor

/// Which host serves a test server (the conformance servers, the testbed): the engine's own
/// listener, or a web framework with the engine mounted in it. The official suites and the
/// interop tests must pass on every one of them.
public enum FrameworkHost: String, CaseIterable, Sendable {
    case nio
    case hummingbird
    case vapor

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
        case .vapor:
            // Vapor reads its command line and environment: give it only `serve`.
            let app = try await Vapor.Application.make(Environment(name: "production", arguments: ["serve"]))
            app.logger.logLevel = .warning
            app.http.server.configuration.hostname = host
            app.http.server.configuration.port = port
            app.http.server.configuration.serverName = name
            // Vapor has no request-head deadline; its idle timeout is the nearest it has.
            app.http.server.configuration.idleTimeout = engine.configuration.requestHeadTimeout
            if let files { app.middleware.use(Vapor.FileMiddleware(publicDirectory: files, defaultFile: "index.html")) }
            app.engineIO(engine)
            do {
                try await app.startup()
                print("\(name) listening on \(app.http.server.shared.localAddress.map { "\($0)" } ?? "?") (vapor)")
                try await app.running?.onStop.get()
                try await app.asyncShutdown()
            } catch {
                try? await app.asyncShutdown()
                throw error
            }
        }
    }
}
