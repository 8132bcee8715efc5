import EngineIO

/// Thrown by a connection middleware to refuse a socket: the client receives a
/// CONNECT_ERROR with this message and data (`err.message`, `err.data` in the JS client).
public struct SocketIOConnectError: Error, Sendable {
    /// The error's message.
    public var message: String
    /// Details for the client, if any.
    public var data: JSONValue?

    /// Refuses the socket with `message` and, optionally, `data`.
    public init(_ message: String, data: JSONValue? = nil) {
        self.message = message
        self.data = data
    }
}

/// The transport a socket's connection uses.
public enum SocketIOTransport: String, Sendable {
    /// HTTP long-polling.
    case polling
    /// A WebSocket.
    case websocket
}

/// The socket's connection is gone (from `SocketIOSocket.whenWritable()`).
public struct SocketIODisconnectedError: Error, Sendable, Equatable {
    /// Creates the error.
    public init() {}
}

/// Why a server emit with an ack got no answer.
public enum SocketIOAckError: Error, Sendable, Equatable {
    /// The client did not answer within the timeout.
    case timeout
    /// The socket disconnected before the client answered.
    case disconnected
}

/// The reference's disconnect reasons, as a socket's `disconnect` handlers receive them.
public enum SocketIODisconnectReason: String, Sendable, CustomStringConvertible {
    /// The connection failed (a WebSocket error, a failed write).
    case transportError = "transport error"
    /// The client closed the connection, or it was lost.
    case transportClose = "transport close"
    /// The client closed its Engine.IO session.
    case forcedClose = "forced close"
    /// The client did not answer a heartbeat in time.
    case pingTimeout = "ping timeout"
    /// The client sent a packet that does not parse.
    case parseError = "parse error"
    /// The server is shutting down.
    case serverShuttingDown = "server shutting down"
    /// The server closed the connection (`disconnect(close: true)`).
    case forcedServerClose = "forced server close"
    /// The server disconnected the socket from its namespace.
    case serverNamespaceDisconnect = "server namespace disconnect"
    /// The client left the namespace.
    case clientNamespaceDisconnect = "client namespace disconnect"

    public var description: String { rawValue }

    /// Whether the session is kept for connection-state recovery: the link was lost, the
    /// client did not leave.
    public var isRecoverable: Bool {
        switch self {
        case .transportError, .transportClose, .forcedClose, .pingTimeout, .serverShuttingDown, .forcedServerClose: true
        case .parseError, .serverNamespaceDisconnect, .clientNamespaceDisconnect: false
        }
    }

    init(_ reason: EngineIOCloseReason) {
        switch reason {
        case .transportClose: self = .transportClose
        case .transportError: self = .transportError
        case .forcedClose: self = .forcedClose
        case .pingTimeout: self = .pingTimeout
        case .parseError: self = .parseError
        case .serverShuttingDown: self = .serverShuttingDown
        }
    }
}
