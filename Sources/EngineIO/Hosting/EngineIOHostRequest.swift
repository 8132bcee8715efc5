import NIOCore
import NIOHTTP1

/// An HTTP request to the Engine.IO path, as a host hands it over: a web framework's route
/// (`SocketIOHummingbird`, `SocketIOVapor`) or anything else that owns the listener.
public struct EngineIOHostRequest: Sendable {
    /// The request line and headers.
    public var head: HTTPRequestHead
    /// The peer's address: the client's, or a proxy's in front of the server.
    public var remoteAddress: SocketAddress?
    /// What the host's middleware established for this request (a framework's request
    /// context, with its authenticated user, say). A session opened by this request keeps
    /// it in its handshake (`EngineIOHandshake.hostContext`).
    public var hostContext: (any Sendable)?

    /// A request with `head` from `remoteAddress`, carrying `hostContext` to the handshake.
    public init(head: HTTPRequestHead, remoteAddress: SocketAddress?, hostContext: (any Sendable)? = nil) {
        self.head = head
        self.remoteAddress = remoteAddress
        self.hostContext = hostContext
    }

    /// Whether the request asks for a WebSocket (`Connection: upgrade`, `Upgrade: websocket`).
    public var isWebSocketUpgrade: Bool { EngineIORequest.isWebSocketUpgrade(head.headers) }
}
