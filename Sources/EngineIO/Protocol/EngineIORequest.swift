import HTTPCommon
import NIOHTTP1

/// An HTTP request addressed to Engine.IO, reduced to what routing needs.
///
/// Parsing and verification are pure, so every error code of the reference server can be
/// tested without a socket; the channel handlers only act on the resulting route.
struct EngineIORequest: Sendable {
    var method: HTTPMethod
    var query: [String: String]
    var isWebSocketUpgrade: Bool
    var origin: String?
    var host: String?

    var transportName: String? { query["transport"] }
    var sid: String? { query["sid"] }

    /// Returns nil when the request is not under the Engine.IO path.
    init?(head: HTTPRequestHead, mountPath: String) {
        let uri = head.uri
        let pathEnd = uri.firstIndex(of: "?") ?? uri.endIndex
        let path = uri[..<pathEnd]
        // The official clients use "/socket.io/"; accept the same path without the slash too.
        let trimmedMount = mountPath.hasSuffix("/") ? mountPath.dropLast() : mountPath[...]
        guard path == mountPath || path == trimmedMount else { return nil }
        self.method = head.method
        self.query = URLQuery.parameters(ofURI: uri)
        self.isWebSocketUpgrade = Self.isWebSocketUpgrade(head.headers)
        self.origin = head.headers.first(name: "origin")
        self.host = head.headers.first(name: "host")
    }

    init(
        method: HTTPMethod, query: [String: String], isWebSocketUpgrade: Bool = false,
        origin: String? = nil, host: String? = nil
    ) {
        self.method = method
        self.query = query
        self.isWebSocketUpgrade = isWebSocketUpgrade
        self.origin = origin
        self.host = host
    }

    /// What a verified request asks for.
    enum Route: Sendable, Hashable {
        /// A new session on this transport.
        case handshake(EngineIOTransportKind)
        /// A GET or POST on an existing polling session.
        case poll(sid: String)
        /// A WebSocket that wants to take over an existing polling session.
        case upgrade(sid: String)
        /// A request (a poll, a post or an upgrade) for a session that the cluster's node
        /// `node` holds (`EngineIOConfiguration.cluster`).
        case remote(node: String)
    }

    /// Checks the request in the reference server's order and returns its route, or the
    /// error the reference answers with.
    ///
    /// - Parameters:
    ///   - sessionTransport: the current transport of the session with that id, nil if there is none.
    func verify(
        configuration: EngineIOConfiguration,
        sessionTransport: (String) -> EngineIOTransportKind?
    ) -> Result<Route, EngineIORequestError> {
        guard let name = transportName, let transport = EngineIOTransportKind(rawValue: name),
            configuration.transports.contains(transport)
        else {
            return .failure(.unknownTransport)
        }
        if let origin, !Self.isValidHeaderValue(origin) {
            return .failure(.badRequest)
        }
        guard configuration.cors.allows(origin: origin, host: host) else {
            return .failure(.forbidden)
        }
        if let sid {
            guard let current = sessionTransport(sid) else {
                return .failure(.unknownSessionID)
            }
            if isWebSocketUpgrade && transport == .websocket {
                // Whatever the session's transport: a second WebSocket for a session that is
                // upgrading or upgraded completes its handshake and is then closed, as the
                // reference does (the official suites expect exactly that).
                return .success(.upgrade(sid: sid))
            }
            guard current == transport, transport == .polling else {
                return .failure(.badRequest)
            }
            return .success(.poll(sid: sid))
        }
        guard method == .GET else {
            return .failure(.badHandshakeMethod)
        }
        if transport == .websocket && !isWebSocketUpgrade {
            return .failure(.badRequest)
        }
        guard query["EIO"] == "4" else {
            return .failure(.unsupportedProtocolVersion)
        }
        return .success(.handshake(transport))
    }

    static func isWebSocketUpgrade(_ headers: HTTPHeaders) -> Bool {
        headers[canonicalForm: "connection"].contains { $0.lowercased() == "upgrade" }
            && headers.first(name: "upgrade")?.lowercased() == "websocket"
    }

    /// Node refuses header values with control characters other than tab.
    private static func isValidHeaderValue(_ value: String) -> Bool {
        value.utf8.allSatisfy { $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }
    }
}
