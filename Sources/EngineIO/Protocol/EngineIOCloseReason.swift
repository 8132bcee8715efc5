/// Why a session ended, with the reference server's reason strings, so that the layer
/// above (Socket.IO's connection-state recovery among others) can tell a lost link from
/// a deliberate close.
public enum EngineIOCloseReason: String, Sendable, Hashable, CustomStringConvertible {
    /// The client closed: a `1` packet, or the WebSocket closed cleanly.
    case transportClose = "transport close"
    /// The transport failed: the connection dropped, or the client broke the protocol.
    case transportError = "transport error"
    /// The server closed the session.
    case forcedClose = "forced close"
    /// No pong arrived within `pingTimeout` of a ping.
    case pingTimeout = "ping timeout"
    /// The client sent a packet that does not parse.
    case parseError = "parse error"
    /// The server is shutting down.
    case serverShuttingDown = "server shutting down"

    public var description: String { rawValue }
}
