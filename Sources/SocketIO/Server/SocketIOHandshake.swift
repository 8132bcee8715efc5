import EngineIO
import NIOCore
import NIOHTTP1

/// What a socket connected with, as `socket.handshake` in the reference server.
public struct SocketIOHandshake: Sendable {
    /// The CONNECT packet's payload (`auth` on the client); an empty object if none.
    public var auth: JSONObject
    /// The Engine.IO handshake of the connection.
    public var engine: EngineIOHandshake
    /// Milliseconds since 1970 at which the socket was created.
    public var issued: Int64

    /// The query parameters of the Engine.IO handshake.
    public var query: [String: String] { engine.query }
    /// The headers of the Engine.IO handshake request.
    public var headers: HTTPHeaders { engine.headers }
    /// The peer's address (a proxy's, behind one).
    public var address: SocketAddress? { engine.remoteAddress }
    /// The request target of the Engine.IO handshake.
    public var url: String { engine.uri }
    /// What the web framework's mount kept of the handshake request (the user the app's
    /// middleware authenticated, say: `addSocketIO(io) { _, context in context.user }` in
    /// Hummingbird); nil on the server's own listener, or when the mount keeps nothing.
    public var hostContext: (any Sendable)? { engine.hostContext }

    /// `hostContext` as `type`, or nil if it is something else (or nothing).
    public func hostContext<Value>(as type: Value.Type = Value.self) -> Value? {
        hostContext as? Value
    }
}
