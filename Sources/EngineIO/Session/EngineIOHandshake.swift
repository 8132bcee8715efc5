import HTTPCommon
import NIOCore
import NIOHTTP1

/// The HTTP request that opened a session, for the layers above (Socket.IO exposes it as
/// `socket.handshake`).
public struct EngineIOHandshake: Sendable {
    /// The request target, path and query.
    public var uri: String
    /// The request's headers (cookies, `Authorization`, `User-Agent`…).
    public var headers: HTTPHeaders
    /// The peer's address: the client's, or a proxy's in front of the server.
    public var remoteAddress: SocketAddress?
    /// The transport of the first request.
    public var transport: EngineIOTransportKind
    /// What the host kept of the request, when a web framework hands requests over
    /// (`EngineIOHostRequest.hostContext`): what its middleware established, the
    /// authenticated user, say. Nil on the server's own listener. Kept as long as the
    /// session: a small value, not the framework's whole request or request context.
    public var hostContext: (any Sendable)?

    /// Records the request that opened a session.
    public init(
        uri: String, headers: HTTPHeaders, remoteAddress: SocketAddress?, transport: EngineIOTransportKind,
        hostContext: (any Sendable)? = nil
    ) {
        self.uri = uri
        // A right-sized copy: the parser's array has room for many more headers, and every
        // session keeps its handshake for as long as it lives.
        var list: [(String, String)] = []
        list.reserveCapacity(headers.count)
        for header in headers { list.append((header.name, header.value)) }
        self.headers = HTTPHeaders(list)
        self.remoteAddress = remoteAddress
        self.transport = transport
        self.hostContext = hostContext
    }

    /// The query parameters, percent-decoded; the first occurrence of a key wins. Parsed
    /// from `uri` when asked for, rather than kept by every session.
    public var query: [String: String] { URLQuery.parameters(ofURI: uri) }
}

/// Receives what happens on one session. Its methods are called on the session's event
/// loop, one at a time, so an implementation needs no locking of its own.
public protocol EngineIOSessionHandler: AnyObject {
    /// A `message` packet arrived.
    func session(_ session: EngineIOSession, didReceive message: EngineIOMessage)
    /// The session ended; no more calls follow.
    func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason)
    /// The session moved from polling to WebSocket.
    func sessionDidUpgrade(_ session: EngineIOSession)
}

extension EngineIOSessionHandler {
    /// Ignores the upgrade: a handler that does not care which transport carries the session.
    public func sessionDidUpgrade(_ session: EngineIOSession) {}
}

/// Accepts new sessions for an `EngineIOServer`.
public protocol EngineIOServerDelegate: Sendable {
    /// A client completed the handshake. Called on `session.eventLoop` after the open packet
    /// has been queued, so anything sent from here reaches the client after it. The
    /// returned handler receives the session's messages and its close.
    func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler
}
