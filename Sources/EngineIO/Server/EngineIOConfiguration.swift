import NIOCore

/// Settings of an Engine.IO server. The defaults are the reference server's, but for
/// `maxPacketsPerPoll`, which the reference does not bound.
public struct EngineIOConfiguration: Sendable {
    /// Where Engine.IO is mounted; the official clients use `/socket.io/`.
    public var path: String = "/socket.io/"
    /// How often the server pings a client.
    public var pingInterval: TimeAmount = .milliseconds(25_000)
    /// How long the server waits for the pong before it closes the session.
    public var pingTimeout: TimeAmount = .milliseconds(20_000)
    /// How long a client may take between opening the WebSocket and probing it (`2probe`):
    /// past it the WebSocket is closed and the session stays on polling. A probed upgrade is
    /// not timed out: its client has paused polling and sends `5` once its last poll's
    /// response has arrived, which a slow link can delay past any timeout, and closing the
    /// WebSocket then would leave it neither polling nor upgraded. The heartbeat bounds it.
    public var upgradeTimeout: TimeAmount = .milliseconds(10_000)
    /// How long a server-closed polling session waits for the GET that carries its `1`.
    public var closeTimeout: TimeAmount = .milliseconds(30_000)
    /// The largest message or POST body accepted, in bytes (`maxPayload` in the open packet).
    public var maxHttpBufferSize: Int = 1_000_000
    /// Bytes a WebSocket may have waiting to be sent before its client counts as slow (the
    /// channel's high water mark). A client still this far behind after
    /// `slowConsumerTimeout` is disconnected ("transport error", so it can recover) rather
    /// than let its backlog grow. 0 turns the check off.
    public var maxOutboundBytes: Int = 1 << 20
    /// How long a WebSocket may stay above `maxOutboundBytes`.
    public var slowConsumerTimeout: TimeAmount = .seconds(10)
    /// Packets a polling session may have queued for its next GET; past that the client is
    /// disconnected as a slow consumer ("transport error").
    public var maxPollingQueue: Int = 10_000
    /// The most packets one polling response carries; a longer queue leaves over several
    /// GETs. The reference sends all it has, but python-engineio's clients (threaded and
    /// asyncio) refuse a payload of more than 16 packets (`Payload.max_decode_packets`):
    /// they drop the connection ("Unexpected packet from server"), reconnect, are sent the
    /// same backlog, and never get through it. The official JavaScript client reads any
    /// number; with only such clients, a higher value saves round trips on a long backlog.
    public var maxPacketsPerPoll: Int = 16
    /// Compression of polling responses (gzip or deflate, as the client accepts), on from
    /// 1,024 bytes as in the reference; nil sends every response as it is.
    public var httpCompression: HTTPCompression? = HTTPCompression()
    /// permessage-deflate on WebSocket (RFC 7692) for clients that offer it; nil, the
    /// default as in the reference, leaves every connection uncompressed.
    public var perMessageDeflate: PerMessageDeflate? = nil
    /// How long a connection may take to send a complete request head, counted from when
    /// it connected or got its last response: slow-header (slowloris) and idle keep-alive
    /// connections are closed after it.
    public var requestHeadTimeout: TimeAmount = .seconds(30)
    /// The most sessions the server keeps at once; further handshakes get 503 with a
    /// `Retry-After`, which the official clients treat as a failed attempt to retry later.
    /// 0 means no limit.
    public var maxSessions: Int = 0
    /// The bus to the other nodes of a cluster, if the server is one of several behind a
    /// balancer: with it, any node serves any request of any session, and the balancer
    /// needs no sticky sessions (see `EngineIOClusterBus`).
    public var cluster: (any EngineIOClusterBus)? = nil
    /// How long a request forwarded to the node that holds its session waits for that
    /// node's answer (a held GET: `pingInterval` longer) before it is answered 504.
    public var clusterRequestTimeout: TimeAmount = .seconds(10)
    /// Which transports clients may use.
    public var transports: Set<EngineIOTransportKind> = [.polling, .websocket]
    /// Which browser origins may talk to the server.
    public var cors: CORSPolicy = .sameOrigin
    /// Which host names requests may address (their `Host` header); others, the page and
    /// the fallback routes included, get 421 Misdirected Request.
    public var allowedHosts: AllowedHosts = .any

    /// The reference server's defaults.
    public init() {}
}

/// Which cross-origin browser requests the server accepts.
///
/// A request with no `Origin` header (a non-browser client) or whose origin is the server's
/// own host is always accepted. Other origins are accepted only when listed; a refused one
/// gets the reference's 403 "Forbidden", for WebSocket handshakes too, since browsers do not
/// apply CORS to WebSockets and a page on any site could otherwise open one.
public struct CORSPolicy: Sendable, Hashable {
    /// The origins accepted besides the server's own.
    public enum Origins: Sendable, Hashable {
        /// None: only the server's own origin (and requests without one).
        case sameOrigin
        /// Every origin (`*`).
        case any
        /// These origins, as browsers send them (`https://example.com`).
        case list(Set<String>)
    }

    /// The origins accepted besides the server's own.
    public var origins: Origins
    /// Sends `Access-Control-Allow-Credentials: true`, so pages may send cookies.
    public var allowCredentials: Bool
    /// Origins accepted with credentials whatever the rest of the policy says: a tool's
    /// page, such as the hosted admin UI (which sends credentials), beside an application
    /// whose own origins do not.
    public var credentialedOrigins: Set<String> = []

    /// A policy accepting `origins`, with or without credentials.
    public init(origins: Origins, allowCredentials: Bool = false) {
        self.origins = origins
        self.allowCredentials = allowCredentials
    }

    /// Only the server's own origin: the default.
    public static let sameOrigin = CORSPolicy(origins: .sameOrigin)
    /// Every origin, without credentials.
    public static let anyOrigin = CORSPolicy(origins: .any)

    /// Parses a comma-separated list as given on the command line: `*` for any origin.
    public init(parsing list: String, allowCredentials: Bool = false) {
        let entries = list.split(separator: ",").map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
        if entries.contains("*") {
            self.init(origins: .any, allowCredentials: allowCredentials)
        } else if entries.isEmpty {
            self.init(origins: .sameOrigin, allowCredentials: allowCredentials)
        } else {
            self.init(origins: .list(Set(entries)), allowCredentials: allowCredentials)
        }
    }

    /// Whether a request from `origin` to the server reached as `host` is allowed.
    func allows(origin: String?, host: String?) -> Bool {
        guard let origin else { return true }
        if let host, Self.host(ofOrigin: origin) == host.lowercased() { return true }
        if credentialedOrigins.contains(origin) { return true }
        switch origins {
        case .sameOrigin: return false
        case .any: return true
        case .list(let allowed): return allowed.contains(origin)
        }
    }

    /// The `Access-Control-Allow-Origin` value for an allowed cross-origin request.
    func allowOriginHeader(for origin: String) -> String {
        if case .any = origins, !allowsCredentials(from: origin) { return "*" }
        return origin
    }

    /// Whether `Access-Control-Allow-Credentials: true` goes to an allowed `origin`.
    func allowsCredentials(from origin: String) -> Bool {
        allowCredentials || credentialedOrigins.contains(origin)
    }

    private static func host(ofOrigin origin: String) -> String? {
        // "scheme://host[:port]" → "host[:port]", compared with the Host header.
        let parts = origin.split(separator: "://", maxSplits: 1, omittingEmptySubsequences: false)
        return parts.count == 2 ? parts[1].lowercased() : nil
    }
}
