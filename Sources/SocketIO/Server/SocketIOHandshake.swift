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
    /// What the web framework's middleware established for the handshake request (its
    /// request context, with the authenticated user, say), when Socket.IO is mounted in one;
    /// nil on the server's own listener. `SocketIOHummingbird` reads it as the app's context.
    public var hostContext: (any Sendable)? { engine.hostContext }
}
