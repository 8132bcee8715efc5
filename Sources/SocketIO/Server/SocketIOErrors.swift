import EngineIO

/// Thrown by a connection middleware to refuse a socket: the client receives a
/// CONNECT_ERROR with this message and data (`err.message`, `err.data` in the JS client).
public struct SocketIOConnectError: Error, Sendable {
    public var message: String
    public var data: JSONValue?

    public init(_ message: String, data: JSONValue? = nil) {
        self.message = message
        self.data = data
    }
}

/// The transport a socket's connection uses.
public enum SocketIOTransport: String, Sendable {
    case polling
    case websocket
}

/// The socket's connection is gone (from `SocketIOSocket.whenWritable()`).
public struct SocketIODisconnectedError: Error, Sendable, Equatable {
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
    case transportError = "transport error"
    case transportClose = "transport close"
    case forcedClose = "forced close"
    case pingTimeout = "ping timeout"
    case parseError = "parse error"
    case serverShuttingDown = "server shutting down"
    case forcedServerClose = "forced server close"
    case serverNamespaceDisconnect = "server namespace disconnect"
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
