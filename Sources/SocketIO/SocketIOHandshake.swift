import EngineIO
import NIOCore
import NIOHTTP1

/// What a socket connected with, as `socket.handshake` in the reference server.
public struct SocketIOHandshake: Sendable {
    /// The CONNECT packet's payload (`auth` on the client); an empty object if none.
    public var auth: JSONObject
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var address: SocketAddress?
    /// The request target of the Engine.IO handshake.
    public var url: String
    /// Milliseconds since 1970 at which the socket was created.
    public var issued: Int64
}
