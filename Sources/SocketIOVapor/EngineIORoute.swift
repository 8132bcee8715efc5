import EngineIO
import NIOCore
import NIOHTTP1
import Vapor

/// The Engine.IO route: hands each request to the engine, with what the mount keeps of it.
enum EngineIORoute {
    static func respond(to request: Request, engine: EngineIOServer, keep: (@Sendable (Request) -> (any Sendable)?)?) async -> Response {
        let head = HTTPRequestHead(version: request.version, method: request.method, uri: request.url.string, headers: request.headers)
        let hostRequest = EngineIOHostRequest(head: head, remoteAddress: request.remoteAddress, hostContext: keep?(request))
        if hostRequest.isWebSocketUpgrade, engine.acceptsWebSocket(hostRequest) {
            // 101 with our upgrader: Vapor writes it, removes its HTTP handlers, and the
            // engine's frame handlers take the connection.
            let response = Response(status: .switchingProtocols)
            response.upgrader = EngineIOUpgrader(engine: engine, request: hostRequest)
            return response
        }
        // Vapor does not say when a connection closes under a held GET: the session notices
        // its client has gone when the heartbeat lapses (see "Mounting in Vapor").
        let connection = EngineIOHostConnection(eventLoop: request.eventLoop)
        let answer = await engine.respond(to: hostRequest, on: connection) { limit in
            // Streamed in, up to the engine's limit (Vapor's collected bodies stop at 16 KB).
            // Vapor refuses a body that reaches its `max`; the engine takes one of exactly
            // `maxHttpBufferSize` bytes, as the reference does.
            do {
                return try await request.body.collect(max: limit + 1).get() ?? ByteBuffer()
            } catch {
                return nil
            }
        }
        return Response(
            status: HTTPResponseStatus(statusCode: Int(answer.status.code)),
            headers: answer.headers,
            body: .init(buffer: answer.body)
        )
    }
}
