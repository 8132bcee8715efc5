/// The errors the reference server answers an HTTP request or WebSocket handshake with,
/// before any session sees it. Each is an HTTP 400 (403 for `forbidden`) with the JSON
/// body `{"code":N,"message":"…"}`.
public enum EngineIORequestError: Int, Error, Sendable, Hashable {
    /// The `transport` query parameter names no transport this server offers.
    case unknownTransport = 0
    /// The `sid` names no session (expired, closed, or never issued), or one on another transport.
    case unknownSessionID = 1
    /// A handshake (no `sid`) that is not a GET.
    case badHandshakeMethod = 2
    /// Anything else the protocol does not allow: a second concurrent GET, a malformed payload, a refused upgrade.
    case badRequest = 3
    /// Refused by the application's `allowRequest` check or the CORS policy.
    case forbidden = 4
    /// An `EIO` other than 4.
    case unsupportedProtocolVersion = 5

    /// The numeric `code` of the JSON body.
    public var code: Int { rawValue }

    /// The `message` of the JSON body, word for word the reference's.
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

    /// The HTTP status the error is answered with.
    public var httpStatus: Int { self == .forbidden ? 403 : 400 }

    /// The exact response body the reference server sends.
    public var body: String { #"{"code":\#(code),"message":"\#(message)"}"# }
}

/// The session closed before what was asked of it could happen.
public struct EngineIOSessionClosedError: Error, Hashable, Sendable {
    /// Creates the error.
    public init() {}
}
