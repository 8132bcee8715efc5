import NIOCore
import NIOHTTP1

/// An HTTP request to the Engine.IO path, as a host hands it over: a web framework's route
/// (`SocketIOHummingbird`, `SocketIOVapor`) or anything else that owns the listener.
public struct EngineIOHostRequest: Sendable {
    /// The request line and headers.
    public var head: HTTPRequestHead
    /// The peer's address: the client's, or a proxy's in front of the server.
    public var remoteAddress: SocketAddress?
    /// What the host keeps of this request for the session it may open (what the app's
    /// middleware established: its authenticated user, say), in the session's handshake
    /// (`EngineIOHandshake.hostContext`) for as long as the session lives.
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
