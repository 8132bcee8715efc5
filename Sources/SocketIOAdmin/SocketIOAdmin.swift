import Logging
import NIOConcurrencyHelpers
import NIOCore
import SocketIO

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Serves the Socket.IO admin UI (`@socket.io/admin-ui`, hosted at admin.socket.io) from a
/// server: the reference's `instrument(io, options)`.
///
/// ```swift
/// let admin = SocketIOAdmin(server: io, configuration: .init(
///     credentials: try .init(username: "admin", password: .bcrypt(hash))))
/// try admin.start()
/// ```
///
/// The UI connects to the admin namespace with its credentials and is sent `config` (what
/// it may do), `all_sockets` in development mode, and every `statsInterval` each node's
/// `server_stats`; in development mode, every socket connected, upgraded or disconnected,
/// every room joined or left and every event received or sent, as it happens. Its commands
/// (`emit`, `join`, `leave`, `_disconnect`) act on the sockets of every node, through the
/// namespace's adapter. In a cluster, start one on every node: each reports its own sockets
/// and statistics to the UI, wherever the UI is connected.
public final class SocketIOAdmin: SocketIOInstrument {
    /// The configuration the admin UI is served with.
    public let configuration: SocketIOAdminConfiguration
    private let server: SocketIOServer
    private let namespace: SocketIONamespace
    private let features: [AdminFeature]
    private let logger: Logger
    private let sessions = NIOLockedValueBox(AdminSessions())
    private let statsTask = NIOLockedValueBox<Task<Void, Never>?>(nil)
    private let startedAt = AdminClock.milliseconds()
    private let audience = AdminAudience()

    /// Another instrument watches the server already.
    public struct AlreadyInstrumented: Error {}

    /// An admin UI for `server`, not yet started.
    public init(server: SocketIOServer, configuration: SocketIOAdminConfiguration, logger: Logger = Logger(label: "socket.io-admin")) {
        self.server = server
        self.configuration = configuration
        self.namespace = server.of(configuration.namespace)
        self.features = AdminFeature.supported(by: configuration)
        self.logger = logger
    }

    /// Creates the admin namespace, watches the server and starts sending `server_stats`.
    /// Call before the server serves: sockets of connections opened earlier go unreported.
    public func start() throws {
        guard server.instrument(self) else { throw AlreadyInstrumented() }
        if configuration.credentials == nil {
            logger.warning("the admin UI is served without authentication", metadata: ["namespace": "\(namespace.name)"])
        }
        namespace.use { [self] socket in try await authenticate(socket) }
        namespace.onConnection { [self] socket in adminConnected(socket) }
        namespace.onServerSideEmit(Self.sessionEvent) { [sessions] arguments in
            guard case .string(let id)? = arguments.first else { return }
            sessions.withLockedValue { $0.insert(id) }
        }
        namespace.onServerSideEmitWithAck(Self.socketsRequest) { [self] _ in [.array(await localSockets())] }
        let interval = configuration.statsInterval
        namespace.onServerSideEmit(Self.watchingEvent) { [audience] _ in audience.watchedElsewhere(for: interval * 3) }
        statsTask.withLockedValue { task in
            task = Task { [weak self] in
                var statistics = AdminStatistics()
                while !Task.isCancelled {
                    guard let self else { return }
                    // Renewed while an admin UI is here, so that the other nodes keep reporting.
                    if self.audience.watchingHere { self.namespace.serverSideEmit(Self.watchingEvent, []) }
                    await self.sendStatistics(&statistics)
                    try? await Task.sleep(nanoseconds: UInt64(interval.nanoseconds))
                }
            }
        }
    }

    /// Stops sending `server_stats`. The namespace and its sockets stay.
    public func stop() {
        statsTask.withLockedValue { task in
            task?.cancel()
            task = nil
        }
    }

    deinit {
        statsTask.withLockedValue { $0?.cancel() }
    }

    /// Between nodes: a session id a node gave out, so that the UI may reconnect anywhere.
    static let sessionEvent = "admin:session"
    /// Between nodes: each node's sockets, for `all_sockets`.
    static let socketsRequest = "admin:sockets"
    /// Between nodes: an admin UI watches this node, so the others report what happens.
    static let watchingEvent = "admin:watching"

    // MARK: The admin namespace

    /// The reference's basic authentication: a session id given out earlier, or the user
    /// name and password.
    private func authenticate(_ socket: SocketIOSocket) async throws {
        guard let credentials = configuration.credentials else { return }
        let auth = socket.handshake.auth
        if case .string(let session)? = auth["sessionId"], sessions.withLockedValue({ $0.contains(session) }) { return }
        guard case .string(let username)? = auth["username"], case .string(let password)? = auth["password"],
            await credentials.verify(username: username, password: password)
        else {
            throw SocketIOConnectError("invalid credentials")
        }
    }

    private func adminConnected(_ socket: SocketIOSocket) {
        if configuration.credentials != nil, socket.handshake.auth["password"] != nil {
            // Logged in with the password: a session id lets the UI reconnect without it.
            let session = AdminSessions.newID()
            sessions.withLockedValue { $0.insert(session) }
            namespace.serverSideEmit(Self.sessionEvent, [.string(session)])
            socket.emit("session", arguments: [.string(session)], recoverable: false)
        }
        if !configuration.readonly { registerCommands(on: socket) }
        socket.emit("config", arguments: [["supportedFeatures": .array(features.map { .string($0.rawValue) })]], recoverable: false)
        guard configuration.mode == .development else { return }
        Task {
            let sockets = await allSockets()
            socket.emit("all_sockets", arguments: [.array(sockets)], recoverable: false)
        }
    }

    private func registerCommands(on socket: SocketIOSocket) {
        socket.on("emit") { [self] event in
            let arguments = event.arguments
            guard arguments.count >= 3, case .string(let name)? = arguments.first, case .string(let eventName) = arguments[2],
                let target = recipients(namespace: name, filter: arguments[1])
            else { return }
            target.emit(eventName, arguments: Array(arguments.dropFirst(3)))
        }
        // `join` and `leave`: (namespace, room, filter?).
        for (command, join) in [("join", true), ("leave", false)] {
            socket.on(command) { [self] event in
                let arguments = event.arguments
                guard case .string(let name)? = arguments.first, arguments.count >= 2, case .string(let room) = arguments[1],
                    let target = recipients(namespace: name, filter: arguments.count > 2 ? arguments[2] : .null)
                else { return }
                Task { try? await join ? target.socketsJoin(room) : target.socketsLeave(room) }
            }
        }
        socket.on("_disconnect") { [self] event in
            let arguments = event.arguments
            guard case .string(let name)? = arguments.first,
                let target = recipients(namespace: name, filter: arguments.count > 2 ? arguments[2] : .null)
            else { return }
            let close = arguments.count > 1 ? arguments[1].boolValue ?? false : false
            Task { try? await target.disconnectSockets(close: close) }
        }
    }

    /// The sockets of namespace `name` that `filter` (a room or socket id, a list of them,
    /// or nothing for all) chooses; nil for a namespace that does not exist, which a command
    /// must not create.
    private func recipients(namespace name: String, filter: JSONValue) -> BroadcastOperator? {
        guard let target = server.namespaces.first(where: { $0.name == name }) else { return nil }
        switch filter {
        case .string(let room):
            return target.to(room)
        case .array(let rooms):
            let names = rooms.compactMap(\.stringValue)
            guard names.count == rooms.count, !names.isEmpty else { return nil }
            return target.broadcastOperator.to(names)
        case .null:
            return target.broadcastOperator
        default:
            return nil
        }
    }

    /// Every socket of this node, described.
    private func localSockets() async -> [JSONValue] {
        var all: [JSONValue] = []
        for namespace in server.namespaces { all += await namespace.mapLocalSockets { $0.adminDescription() } }
        return all
    }

    /// Every socket of every node: this node's, and what the others answer.
    private func allSockets() async -> [JSONValue] {
        var all = await localSockets()
        do {
            for answer in try await namespace.serverSideEmitWithAck(Self.socketsRequest, []) {
                if case .array(let sockets)? = answer.first { all += sockets }
            }
        } catch {
            logger.warning("all_sockets: not every node answered", metadata: ["error": "\(error)"])
        }
        return all
    }

    private func sendStatistics(_ statistics: inout AdminStatistics) async {
        let sample = server.statistics
        let now = AdminClock.milliseconds()
        var namespaces: [JSONValue] = []
        for namespace in server.namespaces {
            namespaces.append(["name": .string(namespace.name), "socketsCount": .number(Double(await namespace.socketCount()))])
        }
        let stats: JSONObject = [
            "serverId": .string(configuration.serverID),
            "hostname": .string(SocketIOAdminConfiguration.hostName),
            "pid": .number(Double(getpid())),
            "uptime": .number(Double(now - startedAt) / 1000),
            "clientsCount": .number(Double(sample.clients)),
            "pollingClientsCount": .number(Double(sample.pollingClients)),
            "aggregatedEvents": .array(statistics.aggregatedEvents(sample, timestamp: now)),
            "namespaces": .array(namespaces),
        ]
        report("server_stats", [.object(stats)])
    }

    /// To every admin UI, on every node; live only (not kept for connection-state recovery).
    private func report(_ event: String, _ arguments: [JSONValue]) {
        namespace.broadcastOperator.withoutRecovery.emit(event, arguments: arguments)
    }

    /// Development mode, and an admin UI to tell.
    private var reportsEverything: Bool { configuration.mode == .development && audience.isWatched }

    // MARK: SocketIOInstrument

    /// Refuses a page of the UI's origin every namespace but the admin one.
    public func refusal(for socket: SocketIOSocket) -> SocketIOConnectError? {
        // Every Origin header: a request carrying the UI's beside another is the UI's too.
        guard let origin = configuration.uiOrigin, socket.namespace !== namespace,
            socket.handshake.headers[canonicalForm: "origin"].contains(where: { $0 == origin })
        else { return nil }
        return SocketIOConnectError("the admin UI may connect to \(namespace.name) only")
    }

    /// Reports `socket_connected`, in development mode.
    public func socketConnected(_ socket: SocketIOSocket) {
        if socket.namespace === namespace {
            audience.joined()
            // Before this node asks the others for their sockets: one node's messages arrive
            // in order, so each reports from before it answers.
            namespace.serverSideEmit(Self.watchingEvent, [])
        }
        guard reportsEverything else { return }
        report("socket_connected", [socket.adminDescription(), .string(AdminClock.now())])
    }

    /// Reports `socket_updated` with the new transport, in development mode.
    public func socketUpgraded(_ socket: SocketIOSocket) {
        guard reportsEverything else { return }
        report("socket_updated", [["id": .string(socket.id), "nsp": .string(socket.namespace.name), "transport": "websocket"]])
    }

    /// Reports `socket_disconnected` with the reason, in development mode.
    public func socketDisconnected(_ socket: SocketIOSocket, reason: SocketIODisconnectReason) {
        defer { if socket.namespace === namespace { audience.left() } }
        guard reportsEverything else { return }
        report("socket_disconnected", [.string(socket.namespace.name), .string(socket.id), .string(reason.rawValue), .string(AdminClock.now())])
    }

    /// Reports `room_joined`, in development mode.
    public func socket(_ socket: SocketIOSocket, joined room: String) {
        guard reportsEverything else { return }
        report("room_joined", [.string(socket.namespace.name), .string(room), .string(socket.id), .string(AdminClock.now())])
    }

    /// Reports `room_left`, in development mode.
    public func socket(_ socket: SocketIOSocket, left room: String) {
        guard reportsEverything else { return }
        report("room_left", [.string(socket.namespace.name), .string(room), .string(socket.id), .string(AdminClock.now())])
    }

    /// Reports `event_received`, in development mode.
    public func socket(_ socket: SocketIOSocket, received event: [JSONValue]) {
        guard reportsEverything else { return }
        let shown = AdminEventPreview.of(event, limit: configuration.maxReportedEventBytes)
        report("event_received", [.string(socket.namespace.name), .string(socket.id), .array(shown), .string(AdminClock.now())])
    }

    /// Reports `event_sent`, asked only in development mode (`wantsSentEvents(on:)`).
    public func socket(_ socket: SocketIOSocket, sent event: [JSONValue]) {
        let shown = AdminEventPreview.of(event, limit: configuration.maxReportedEventBytes)
        report("event_sent", [.string(socket.namespace.name), .string(socket.id), .array(shown), .string(AdminClock.now())])
    }

    /// Every namespace but the admin one, in development mode.
    public func wantsSentEvents(on namespace: SocketIONamespace) -> Bool {
        // The admin namespace's own traffic is these reports: reporting it would never end.
        reportsEverything && namespace !== self.namespace
    }
}

/// The session ids given to admin UIs that logged in, so that they reconnect without the
/// password (the reference's in-memory store), shared by every node. Bounded: the oldest
/// half goes when it is full.
struct AdminSessions {
    private var ids: Set<String> = []
    private var order: [String] = []
    static let capacity = 10_000

    func contains(_ id: String) -> Bool { ids.contains(id) }

    mutating func insert(_ id: String) {
        guard ids.insert(id).inserted else { return }
        order.append(id)
        if order.count > Self.capacity {
            let dropped = order.prefix(order.count / 2)
            ids.subtract(dropped)
            order.removeFirst(dropped.count)
        }
    }

    /// 128 random bits, in hex.
    static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}
