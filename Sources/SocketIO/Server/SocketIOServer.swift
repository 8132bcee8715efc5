import EngineIO
import HTTPCommon
import Logging
import NIOConcurrencyHelpers
import NIOCore

/// A Socket.IO v5 server over an Engine.IO server.
///
/// ```swift
/// let io = SocketIOServer()
/// io.sockets.onConnection { socket in
///     socket.on("chat message") { event in
///         io.sockets.emit("chat message", event.arguments)
///         event.ack?()
///     }
/// }
/// try await io.bind(host: "0.0.0.0", port: 3000, group: MultiThreadedEventLoopGroup.singleton)
/// ```
public final class SocketIOServer: Sendable {
    /// The configuration the server was created with.
    public let configuration: SocketIOConfiguration
    /// The Engine.IO server beneath, for putting on a channel of your own.
    public let engine: EngineIOServer
    private let router: SocketIORouter

    /// A server with `configuration`; requests outside its path go to `fallback`.
    public init(
        configuration: SocketIOConfiguration = .init(),
        fallback: any HTTPFallbackResponder = NotFoundResponder(),
        logger: Logger = Logger(label: "socket.io")
    ) {
        self.configuration = configuration
        self.router = SocketIORouter(configuration: configuration)
        self.engine = EngineIOServer(configuration: configuration.engineIO, delegate: router, fallback: fallback, logger: logger)
    }

    /// The main namespace, `/`.
    public var sockets: SocketIONamespace { router.namespace(named: "/")! }

    /// The namespace `name`, created on first use. Clients may connect only to namespaces
    /// that exist; others get CONNECT_ERROR "Invalid namespace".
    public func of(_ name: String) -> SocketIONamespace {
        router.namespace(creating: name.hasPrefix("/") ? name : "/" + name)
    }

    /// Emits to every socket of the main namespace.
    public func emit(_ event: String, _ arguments: JSONValue...) {
        sockets.emit(event, arguments: arguments)
    }

    /// A broadcast to the main namespace's sockets in `room`.
    public func to(_ room: String) -> BroadcastOperator { sockets.to(room) }

    /// The namespaces that exist now, `/` first, the others by name.
    public var namespaces: [SocketIONamespace] { router.allNamespaces() }

    /// Installs the server's instrument (see `SocketIOInstrument`), before it serves: sockets
    /// of connections opened earlier are not watched. One per server: returns false, and
    /// changes nothing, when one is installed already.
    @discardableResult
    public func instrument(_ instrument: any SocketIOInstrument) -> Bool {
        router.instruments.install(instrument)
    }

    /// A sample of the connections beneath the server (what the admin UI's `server_stats`
    /// reports): open now, on polling, opened and closed since the start, and the process's
    /// traffic.
    public var statistics: SocketIOServerStatistics {
        let engine = engine.statistics
        return SocketIOServerStatistics(
            clients: engine.sessions, pollingClients: engine.pollingSessions,
            clientsOpened: engine.sessionsOpened, clientsClosed: engine.sessionsClosed,
            packetsIn: engine.traffic.packetsIn, packetsOut: engine.traffic.packetsOut,
            bytesIn: engine.traffic.bytesIn, bytesOut: engine.traffic.bytesOut
        )
    }

    /// Listens on `host:port` and serves until the returned channel is closed; see
    /// `EngineIOServer.bind` for `beneathHTTP` (TLS, say).
    public func bind(
        host: String,
        port: Int,
        group: any EventLoopGroup,
        beneathHTTP: (@Sendable (any Channel) throws -> Void)? = nil
    ) async throws -> any Channel {
        try await engine.bind(host: host, port: port, group: group, beneathHTTP: beneathHTTP)
    }
}

/// Accepts Engine.IO sessions and keeps the namespaces.
final class SocketIORouter: EngineIOServerDelegate {
    let configuration: SocketIOConfiguration
    private let namespaces: NIOLockedValueBox<[String: SocketIONamespace]>
    /// Each loop's converter for the connections whose client speaks msgpack.
    let transcoders = EventLoopRegistry { _ in MessagePackTranscoder() }
    /// The server's instrument, if one is installed.
    let instruments = InstrumentSlot()
    /// Each loop's decoder of written events, for an instrument that wants them.
    let sentEventDecoders = EventLoopRegistry { _ in SentEventDecoder() }

    init(configuration: SocketIOConfiguration) {
        self.configuration = configuration
        let main = SocketIONamespace(name: "/", configuration: configuration)
        self.namespaces = NIOLockedValueBox(["/": main])
    }

    func namespace(named name: String) -> SocketIONamespace? {
        namespaces.withLockedValue { $0[name] }
    }

    func allNamespaces() -> [SocketIONamespace] {
        namespaces.withLockedValue { $0.values.sorted { ($0.name == "/" ? "" : $0.name) < ($1.name == "/" ? "" : $1.name) } }
    }

    func namespace(creating name: String) -> SocketIONamespace {
        namespaces.withLockedValue { namespaces in
            if let existing = namespaces[name] { return existing }
            let namespace = SocketIONamespace(name: name, configuration: configuration)
            namespaces[name] = namespace
            return namespace
        }
    }

    func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler {
        SocketIOConnection(session: session, router: self)
    }
}

/// A sample of a server's connections: `SocketIOServer.statistics`.
public struct SocketIOServerStatistics: Sendable, Hashable {
    /// Engine.IO connections open now.
    public var clients: Int
    /// Of those, the ones still on long-polling.
    public var pollingClients: Int
    /// Connections opened since the server started.
    public var clientsOpened: Int
    /// Connections closed since the server started.
    public var clientsClosed: Int
    /// Engine.IO packets received by the process since it started.
    public var packetsIn: Int
    /// Engine.IO packets sent by the process since it started.
    public var packetsOut: Int
    /// Bytes received by the process's Engine.IO transports since it started.
    public var bytesIn: Int
    /// Bytes sent by the process's Engine.IO transports since it started.
    public var bytesOut: Int

    /// A sample with these figures.
    public init(
        clients: Int, pollingClients: Int, clientsOpened: Int, clientsClosed: Int,
        packetsIn: Int, packetsOut: Int, bytesIn: Int, bytesOut: Int
    ) {
        self.clients = clients
        self.pollingClients = pollingClients
        self.clientsOpened = clientsOpened
        self.clientsClosed = clientsClosed
        self.packetsIn = packetsIn
        self.packetsOut = packetsOut
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
    }
}
