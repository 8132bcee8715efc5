/// The errors the reference server answers an HTTP request or WebSocket handshake with,
/// before any session sees it. Each is an HTTP 400 (403 for `forbidden`) with the JSON
/// body `{"code":N,"message":"…"}`.
public enum EngineIORequestError: Int, Error, Sendable, Hashable {
    case unknownTransport = 0
    case unknownSessionID = 1
    case badHandshakeMethod = 2
    case badRequest = 3
    case forbidden = 4
    case unsupportedProtocolVersion = 5

    public var code: Int { rawValue }

    public var message: String {
        switch self {
        case .unknownTransport: "Transport unknown"
        case .unknownSessionID: "Session ID unknown"
        case .badHandshakeMethod: "Bad handshake method"
        case .badRequest: "Bad request"
        case .forbidden: "Forbidden"
        case .unsupportedProtocolVersion: "Unsupported protocol version"
        }
    }

    public var httpStatus: Int { self == .forbidden ? 403 : 400 }

    /// The exact response body the reference server sends.
    public var body: String { #"{"code":\#(code),"message":"\#(message)"}"# }
}

/// The session closed before what was asked of it could happen.
public struct EngineIOSessionClosedError: Error, Hashable, Sendable {
    public init() {}
}
