import NIOCore
import NIOHTTP1

/// The HTTP request that opened a session, for the layers above (Socket.IO exposes it as
/// `socket.handshake`).
public struct EngineIOHandshake: Sendable {
    /// The request target, path and query.
    public var uri: String
    /// The query parameters, percent-decoded; the first occurrence of a key wins.
    public var query: [String: String]
    public var headers: HTTPHeaders
    public var remoteAddress: SocketAddress?
    /// The transport of the first request.
    public var transport: EngineIOTransportKind
}

/// Receives what happens on one session. Its methods are called on the session's event
/// loop, one at a time, so an implementation needs no locking of its own.
public protocol EngineIOSessionHandler: AnyObject {
    /// A `message` packet arrived.
    func session(_ session: EngineIOSession, didReceive message: EngineIOMessage)
    /// The session ended; no more calls follow.
    func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason)
}

/// Accepts new sessions for an `EngineIOServer`.
public protocol EngineIOServerDelegate: Sendable {
    /// A client completed the handshake. Called on `session.eventLoop` after the open packet
    /// has been queued, so anything sent from here reaches the client after it. The
    /// returned handler receives the session's messages and its close.
    func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler
}
