import Atomics
import HTTPCommon
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket

/// An Engine.IO v4 server: it answers the handshake, keeps the sessions, and routes each
/// polling request and WebSocket to its session.
///
/// Put it on a channel with `configureChannel(_:)` (or let `bind` do it). Requests outside
/// `configuration.path` go to the `fallback` responder, so one port can also serve a page.
public final class EngineIOServer: Sendable {
    /// The configuration the server was created with.
    public let configuration: EngineIOConfiguration
    let delegate: any EngineIOServerDelegate
    let fallback: any HTTPFallbackResponder
    let logger: Logger

    private struct Entry {
        let session: EngineIOSession
        var transport: EngineIOTransportKind
    }

    private struct Registry {
        /// Every open session by id.
        var sessions: [String: Entry] = [:]
        /// Sessions their client closed over polling with no GET waiting, for
        /// `clientCloseGrace`: the next GET gets `6` (see `sessionClosed`).
        var owedNoops: Set<String> = []
        /// Sessions opened and closed since the server started.
        var opened = 0
        var closed = 0
    }

    /// The lock is taken once per HTTP request or WebSocket handshake, never per message.
    private let registry = NIOLockedValueBox(Registry())

    /// Each event loop's WebSocket flush batcher, taken once per connection, not per write.
    let flushBatchers = EventLoopRegistry { _ in FlushBatcher() }
    /// Each loop's permessage-deflate compressor and inflater, made when a WebSocket there
    /// first negotiates the extension.
    let deflaters = EventLoopRegistry { _ in WebSocketDeflater() }

    /// The open WebSockets, for hosts that stop when their connections' tasks have returned.
    let openWebSockets = OpenWebSockets()

    /// The carrier of other nodes' sessions' requests, in a cluster (`configuration.cluster`).
    let forwarder: SessionForwarder?

    /// How long a GET sent together with the client's close is still answered with `6`.
    static let clientCloseGrace = TimeAmount.seconds(1)

    /// Creates a server that hands its sessions to `delegate` and every request outside `configuration.path` to `fallback`.
    public init(
        configuration: EngineIOConfiguration = .init(),
        delegate: any EngineIOServerDelegate,
        fallback: any HTTPFallbackResponder = NotFoundResponder(),
        logger: Logger = Logger(label: "engine.io")
    ) {
        self.configuration = configuration
        self.delegate = delegate
        self.fallback = fallback
        self.logger = logger
        self.forwarder = configuration.cluster.map { SessionForwarder(bus: $0, logger: logger) }
        configuration.cluster?.onReceive { [weak self] message in self?.clusterReceived(message) }
    }

    /// How many sessions are open.
    public var sessionCount: Int { registry.withLockedValue { $0.sessions.count } }

    /// The sessions open now, and counts since the server started: what a monitor (the
    /// admin UI's `server_stats`) samples. Takes the registry's lock once and visits every
    /// session: for a sample every few seconds, not per message.
    public var statistics: EngineIOStatistics {
        var statistics = registry.withLockedValue { registry in
            EngineIOStatistics(
                sessions: registry.sessions.count,
                pollingSessions: registry.sessions.values.reduce(0) { $0 + ($1.transport == .polling ? 1 : 0) },
                sessionsOpened: registry.opened,
                sessionsClosed: registry.closed
            )
        }
        statistics.traffic = EngineIOTraffic.total
        return statistics
    }

    /// Listens on `host:port` and serves until the returned channel is closed.
    ///
    /// `beneathHTTP` runs first on each accepted connection, to add the handlers that carry
    /// HTTP, such as TLS (`NIOSSLServerHandler`); Engine.IO's own handlers go above them.
    public func bind(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        beneathHTTP: (@Sendable (any Channel) throws -> Void)? = nil
    ) async throws -> any Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: Self.receiveAllocator)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try beneathHTTP?(channel)
                    try self.configureChannel(channel)
                }
            }
            .bind(host: host, port: port)
            .get()
    }

    /// How the engine's connections size their reads; a host that accepts connections for the
    /// engine sets it on each before its first read.
    ///
    /// NIO keeps a connection's last receive buffer for its next read, so an idle connection
    /// holds one buffer of the size its reads last needed. Socket.IO traffic is mostly small
    /// frames: reads start at 256 bytes and grow as a connection's traffic asks (NIO's default
    /// starts at 2 KiB, which an idle WebSocket would keep: 1.9 KiB more per connection,
    /// measured at 10,000, and more memory touched per fan-out).
    public static let receiveAllocator = AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 256, maximum: 65536)

    /// Sets on a connection that a host accepted for the engine what the engine's own listener
    /// sets on its connections: `TCP_NODELAY` (a small frame leaves at once instead of waiting
    /// for the peer's acknowledgement of the last) and ``receiveAllocator``. Call it on the
    /// channel's event loop, before its first read. (NIO's `ServerBootstrap` sets `TCP_NODELAY`
    /// on the listening socket only, which Linux does not hand on to accepted ones.)
    public static func configureAcceptedConnection(_ channel: any Channel) throws {
        if let options = channel.syncOptions {
            try options.setOption(.socketOption(.tcp_nodelay), value: 1)
            try options.setOption(.recvAllocator, value: receiveAllocator)
        } else {
            channel.setOption(.socketOption(.tcp_nodelay), value: 1).whenFailure { _ in }
            channel.setOption(.recvAllocator, value: receiveAllocator).whenFailure { _ in }
        }
    }

    /// Installs the HTTP server pipeline, the WebSocket upgrader and the request router on
    /// a new connection. Call it on the channel's event loop.
    public func configureChannel(_ channel: any Channel) throws {
        _ = Self.genericHandlersInstantiated
        if configuration.maxOutboundBytes > 0 {
            let high = configuration.maxOutboundBytes
            _ = channel.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high))
        }
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: max(configuration.maxHttpBufferSize, 1 << 14),
            // WebSocketTransportHandler answers protocol errors itself, closing gracefully.
            automaticErrorHandling: false,
            // WebSocketUpgradeHandler has already asked `acceptsWebSocket`.
            shouldUpgrade: { channel, head in channel.eventLoop.makeSucceededFuture(self.webSocketResponseHeaders(for: head)) },
            upgradePipelineHandler: { channel, head in
                channel.eventLoop.makeCompletedFuture {
                    try self.configureWebSocket(channel, head: head)
                }
            }
        )
        // NIO's HTTP server pipeline, laid out by hand so that an upgrade can happen on any
        // request of a keep-alive connection (WebSocketUpgradeHandler), not only the first.
        let encoder = HTTPResponseEncoder()
        let decoder = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        let pipelining = HTTPServerPipelineHandler()
        let validator = NIOHTTPResponseHeadersValidator()
        let errors = HTTPServerProtocolErrorHandler()
        let router = HTTPRequestHandler(server: self)
        let upgrade = WebSocketUpgradeHandler(
            upgrader: upgrader,
            accepts: { self.acceptsWebSocket($0) },
            encoder: encoder,
            httpHandlers: [errors, validator, pipelining, decoder],
            router: router
        )
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandlers([encoder, decoder, pipelining, validator, errors, upgrade])
        try pipeline.addHandler(router, name: HTTPRequestHandler.name)
    }

    /// The generic handlers of a connection's pipeline, made once before any is used.
    ///
    /// The first use of a generic type from two threads at once can crash the Swift runtime
    /// (a conformance check on metadata still being built: swiftlang/swift#37656, #61276;
    /// seen here as a crash in `swift_checkMetadataState` when the first two connections
    /// reached two event loops together). A `static let` is initialised once, the other
    /// threads waiting for it, so the first `configureChannel` builds these alone.
    private static let genericHandlersInstantiated: Void = {
        _ = ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes))
        _ = ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: 1 << 14))
        _ = WebSocketFrameEncoder()
        _ = HTTPServerRequestPart.end(nil)
        _ = HTTPServerResponsePart.end(nil)
    }()

    // MARK: Routing

    /// Where `request` goes. With `forwarding` (and a cluster), a session id that names
    /// another node routes there; without, only this node's sessions are known.
    func route(_ request: EngineIORequest, forwarding: Bool = true) -> Result<EngineIORequest.Route, EngineIORequestError> {
        let route = request.verify(configuration: configuration) { sid in
            self.registry.withLockedValue { $0.sessions[sid]?.transport ?? ($0.owedNoops.contains(sid) ? .polling : nil) }
        }
        if forwarding, case .failure(.unknownSessionID) = route, let sid = request.sid, let node = forwarder?.owner(of: sid) {
            return .success(.remote(node: node))
        }
        return route
    }

    /// Whether a new session would go over `maxSessions`, or the server is shutting down
    /// (`stopAccepting()`): either way a handshake gets 503, which the clients retry.
    var isAtCapacity: Bool {
        shuttingDown.load(ordering: .relaxed) || (configuration.maxSessions > 0 && sessionCount >= configuration.maxSessions)
    }

    private let shuttingDown = ManagedAtomic(false)

    /// Refuses new sessions from now on (503 with `Retry-After`, which the official clients
    /// retry, against another node behind a balancer): the first step of a graceful shutdown,
    /// before the open sessions are drained and closed. Upgrades of open sessions go on.
    public func stopAccepting() {
        shuttingDown.store(true, ordering: .relaxed)
    }

    func session(_ sid: String) -> EngineIOSession? {
        registry.withLockedValue { $0.sessions[sid]?.session }
    }

    /// Whether `sid` names a session its client just closed whose concurrent GET is still
    /// owed its `6`; true once only.
    func takeOwedNoop(_ sid: String) -> Bool {
        registry.withLockedValue { $0.owedNoops.remove(sid) != nil }
    }

    /// Whether `head` names a host this server answers to (`allowedHosts`).
    func servesHost(of head: HTTPRequestHead) -> Bool {
        configuration.allowedHosts.allows(hostHeader: head.headers.first(name: "host"))
    }

    func acceptsWebSocket(_ head: HTTPRequestHead) -> Bool {
        // A refused host falls through to HTTPRequestHandler, which answers it.
        guard servesHost(of: head) else { return false }
        guard let request = EngineIORequest(head: head, mountPath: configuration.path) else { return false }
        switch route(request) {
        case .success(.handshake(.websocket)): return !isAtCapacity
        case .success(.upgrade): return true
        case .success(.remote): return request.transportName == "websocket"
        default: return false
        }
    }

    func configureWebSocket(_ channel: any Channel, head: HTTPRequestHead, hostContext: (any Sendable)? = nil) throws {
        let deflate = configuration.perMessageDeflate.flatMap { settings in
            DeflateAgreement.negotiate(head.headers).map {
                WebSocketConnection.Deflate(
                    deflater: deflaters.value(for: channel.eventLoop), windowBits: $0.serverWindowBits,
                    threshold: max(settings.threshold, PerMessageDeflate.minimumCompressed)
                )
            }
        }
        let connection = WebSocketConnection(channel: channel, batcher: flushBatchers.value(for: channel.eventLoop), deflate: deflate)
        let target: WebSocketTransportHandler.Target
        switch EngineIORequest(head: head, mountPath: configuration.path).map({ route($0) }) {
        case .success(.upgrade(let sid)):
            guard let session = session(sid) else {
                connection.close(code: .policyViolation)
                return
            }
            target = .upgrade(session)
        case .success(.remote(let node)):
            target = .relay(node: node, head: head)
        default:
            target = .handshake(
                EngineIOHandshake(
                    uri: head.uri,
                    headers: head.headers,
                    remoteAddress: channel.remoteAddress,
                    transport: .websocket,
                    hostContext: hostContext
                )
            )
        }
        // Encoded frames enter beneath the encoder the upgrader installed.
        let encoder = try channel.pipeline.syncOperations.handler(type: WebSocketFrameEncoder.self)
        try channel.pipeline.syncOperations.addHandler(connection.writer, position: .before(encoder))
        try channel.pipeline.syncOperations.addHandler(WebSocketTransportHandler(server: self, connection: connection, target: target))
    }

    /// The headers the 101 answering the WebSocket request `head` carries beside the
    /// handshake's own: the permessage-deflate agreement, if the option is on and the client
    /// offered it. `configureWebSocket` reaches the same agreement from the same head.
    func webSocketResponseHeaders(for head: HTTPRequestHead) -> HTTPHeaders {
        guard configuration.perMessageDeflate != nil, let agreement = DeflateAgreement.negotiate(head.headers) else { return [:] }
        return ["sec-websocket-extensions": agreement.responseHeader]
    }

    // MARK: Session lifecycle

    /// Creates a session on `eventLoop` (the caller is on it) and opens it.
    func openSession(
        handshake: EngineIOHandshake,
        on eventLoop: any EventLoop,
        webSocket: WebSocketConnection?
    ) -> EngineIOSession {
        // In a cluster, the id starts with this node's: any node can tell where it lives.
        let id = (forwarder?.nodeID ?? "") + RandomIdentifier.sessionID()
        let session = EngineIOSession(
            id: id, eventLoop: eventLoop, handshake: handshake, server: self
        )
        registry.withLockedValue {
            $0.sessions[id] = Entry(session: session, transport: handshake.transport)
            $0.opened += 1
        }
        EngineIOMetrics.opened(handshake.transport)
        logger.debug("session opened", metadata: ["session": "\(EngineIOSession.logLabel(id))", "transport": "\(handshake.transport.rawValue)", "remote": "\(handshake.remoteAddress.map { "\($0)" } ?? "?")"])
        let upgrades: [EngineIOTransportKind] =
            handshake.transport == .polling && configuration.transports.contains(.websocket) ? [.websocket] : []
        session.open(upgrades: upgrades, webSocket: webSocket)
        return session
    }

    /// Closes every session with "server shutting down" (a reason clients reconnect after),
    /// without waiting for polling clients to come back for their `1`, and returns once the
    /// close frames and answers have been written.
    public func closeAllSessions() async {
        let all = registry.withLockedValue { Array($0.sessions.values) }
        var written = all.map { $0.session.closeNow(reason: .serverShuttingDown) }
        // And the WebSockets relayed for other nodes' sessions: their clients come back
        // through the balancer to a node that stays.
        written += forwarder?.closeAllRelays() ?? []
        for future in written { try? await future.get() }
    }

    func sessionUpgraded(_ id: String) {
        registry.withLockedValue { $0.sessions[id]?.transport = .websocket }
        EngineIOMetrics.upgraded()
        logger.debug("session upgraded", metadata: ["session": "\(EngineIOSession.logLabel(id))"])
    }

    /// Forgets a closed session.
    ///
    /// A polling client closes by POSTing `1`, and may send its next GET at the same time
    /// (the official suite's "forcefully closes the session" does). The reference, on one
    /// thread, reads that GET first and answers it `6` when the close arrives; here the two
    /// may be read on two event loops in either order. So a session its client closed with
    /// no GET waiting (`owesNoop`) answers one more GET with `6`, for `clientCloseGrace`:
    /// the outcome is the same whichever request is read first, and a later GET is refused.
    func sessionClosed(_ id: String, reason: EngineIOCloseReason, owesNoop: Bool = false, on eventLoop: (any EventLoop)? = nil) {
        guard
            let entry = registry.withLockedValue({ registry -> Entry? in
                let entry = registry.sessions.removeValue(forKey: id)
                if entry != nil { registry.closed += 1 }
                if entry != nil, owesNoop { registry.owedNoops.insert(id) }
                return entry
            })
        else { return }
        if owesNoop, let eventLoop {
            eventLoop.scheduleTask(in: Self.clientCloseGrace) { _ = self.takeOwedNoop(id) }
        }
        EngineIOMetrics.closed(reason, transport: entry.transport)
        logger.debug("session closed", metadata: ["session": "\(EngineIOSession.logLabel(id))", "reason": "\(reason.rawValue)"])
    }
}
