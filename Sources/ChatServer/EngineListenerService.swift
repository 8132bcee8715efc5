import EngineIO
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The chat's Socket.IO on the engine's own listener (`--framework nio`): no page and no
/// HTTP routes, the leanest host there is, so that the benchmark can show what serving the
/// chat as a Hummingbird app costs. Listed where the app would be: the services after it
/// (Socket.IO, the chat) are shut down before it stops listening.
struct EngineListenerService: Service {
    let engine: EngineIOServer
    let host: String
    let port: Int
    let logger: Logger

    func run() async throws {
        let channel = try await engine.bind(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton)
        let bound = channel.localAddress.map { "\($0)" } ?? "\(host):\(port)"
        logger.info("chat-server listening", metadata: ["address": "\(bound)", "framework": "nio"])
        print("chat-server listening on \(bound) (nio: Socket.IO only)")
        try? await gracefulShutdown()
        try await channel.close()
    }
}
