import EngineIO
import NIOCore
import NIOHTTP1
import NIOWebSocket
import Vapor

/// Vapor's upgrade to WebSocket, ending on the engine's own frame handlers: NIO's upgrader
/// checks the handshake and writes the 101, Vapor removes its HTTP handlers, and the engine
/// adopts the channel (no WebSocketKit `WebSocket` in between).
struct EngineIOUpgrader: Upgrader {
    let engine: EngineIOServer
    let request: EngineIOHostRequest

    func applyUpgrade(req: Request, res: Response) -> any HTTPServerProtocolUpgrader {
        let engine = self.engine
        let request = self.request
        return NIOWebSocketServerUpgrader(
            maxFrameSize: engine.webSocketMaxFrameSize,
            automaticErrorHandling: false,
            shouldUpgrade: { channel, _ in channel.eventLoop.makeSucceededFuture(engine.webSocketResponseHeaders(for: request)) },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture { try engine.adoptWebSocket(channel, for: request) }
            }
        )
    }
}
