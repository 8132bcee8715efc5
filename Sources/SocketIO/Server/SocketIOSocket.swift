import EngineIO
import Metrics
import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One client connected to one namespace.
///
/// A socket lives on its connection's event loop. Its handlers run there; its methods may
/// be called from anywhere (they hop onto the loop when needed).
public final class SocketIOSocket: @unchecked Sendable {
    // @unchecked Sendable: `id`, `pid`, `namespace`, `handshake`, `recovered` and
    // `connection` are immutable. Every other stored property is read and written only on
    // `eventLoop`: public methods hop there first, internal ones are called there by the
    // connection and the adapter shard of that loop.

    /// Handles one event from the client, on the socket's event loop.
    public typealias EventHandler = @Sendable (SocketIOEvent) -> Void
    /// Runs when the socket disconnects, with the reason, on its event loop.
    public typealias DisconnectHandler = @Sendable (SocketIOSocket, SocketIODisconnectReason) -> Void

    /// The socket id: public, shared with other clients in rooms and broadcasts.
    public let id: String
    /// The private session id used for connection-state recovery (nil when it is off).
    public let pid: String?
    /// The namespace the socket is connected to.
    public let namespace: SocketIONamespace
    /// What the socket connected with: auth payload, headers, query, address.
    public let handshake: SocketIOHandshake
    /// Whether this socket resumed an earlier session (connection-state recovery).
    public let recovered: Bool

    let connection: SocketIOConnection

    /// The rooms the socket is in, its own id among them, with the offsets they took
    /// effect from.
    private(set) var memberships: RoomMemberships
    /// The offset through which a recovery replay carried this socket's packets; broadcasts
    /// up to it still on their way to the loop are not delivered twice.
    private(set) var recoveredThrough: UInt64 = 0
    private var storedData: JSONValue
    /// Event handlers in registration order. A socket has a few, so a flat list is both
    /// smaller than a dictionary of arrays and as quick to search.
    private var handlers: [(name: String, handler: EventHandler)] = []
    private var disconnectingHandlers: [DisconnectHandler] = []
    private var disconnectHandlers: [DisconnectHandler] = []
    private var pendingAcks: [Int: PendingAck] = [:]
    private var nextAckID = 0
    private(set) var isConnected = false
    /// Token bucket of the event rate limit: tokens left, and when it was last refilled.
    private var eventTokens: Double = 0
    private var tokensRefilledAt = NIODeadline.now()
    /// A newer socket recovered this one's session: it must not persist it again.
    private var superseded = false

    private struct PendingAck {
        let callback: @Sendable (Result<[JSONValue], SocketIOAckError>) -> Void
        let timer: Scheduled<Void>?
    }

    /// The id of the Engine.IO connection beneath (the reference's `socket.client.id`,
    /// `socket.conn.id`): shared by the connection's sockets in every namespace. Private to
    /// the server, like a session cookie: never send it to other clients.
    public var clientID: String { connection.session.id }

    /// The event loop the socket lives on, its connection's.
    public var eventLoop: any EventLoop { connection.eventLoop }

    static let connectedSockets = Meter(label: "socketio_sockets_connected")
    static let rateLimited = Counter(label: "socketio_events_rate_limited_total")

    private static func millisecondsSince1970() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
    }

    /// Takes a token from the bucket, refilled at `maxEventsPerSecond`.
    private func withinRateLimit() -> Bool {
        let rate = connection.maxEventsPerSecond
        guard rate > 0 else { return true }
        let now = NIODeadline.now()
        let elapsed = Double((now - tokensRefilledAt).nanoseconds) / 1e9
        tokensRefilledAt = now
        eventTokens = min(Double(rate), eventTokens + elapsed * Double(rate))
        guard eventTokens >= 1 else { return false }
        eventTokens -= 1
        return true
    }

    init(namespace: SocketIONamespace, connection: SocketIOConnection, auth: JSONObject, restored: RestoredSession?) {
        self.namespace = namespace
        self.connection = connection
        let engine = connection.session.handshake
        self.handshake = SocketIOHandshake(auth: auth, engine: engine, issued: Self.millisecondsSince1970())
        self.eventTokens = Double(connection.maxEventsPerSecond)
        if let restored {
            self.id = restored.id
            self.pid = restored.pid
            self.memberships = restored.rooms
            self.storedData = restored.data
            self.recovered = true
        } else {
            self.id = RandomIdentifier.make(byteCount: 15)
            self.pid = namespace.recovery != nil ? RandomIdentifier.make(byteCount: 15) : nil
            self.memberships = RoomMemberships()
            self.storedData = .null
            self.recovered = false
        }
    }

    // MARK: State

    /// Whether the socket is connected. Read it on `eventLoop`. False from the moment a
    /// newer socket took over its recovered session.
    public var connected: Bool {
        eventLoop.assertInEventLoop()
        return isConnected && !superseded
    }

    /// The rooms the socket is in, including the one named by its id. Read it on `eventLoop`.
    public var rooms: Set<String> {
        eventLoop.assertInEventLoop()
        return memberships.rooms
    }

    /// Application data kept with the socket, and restored with it by connection-state
    /// recovery. Use it on `eventLoop`.
    public var data: JSONValue {
        get {
            eventLoop.assertInEventLoop()
            return storedData
        }
        set {
            eventLoop.assertInEventLoop()
            storedData = newValue
            if isConnected { sessionChanged() }
        }
    }

    // MARK: Handlers

    /// Handles the event `name`, on the socket's event loop.
    public func on(_ name: String, _ handler: @escaping EventHandler) {
        onLoop { $0.handlers.append((name, handler)) }
    }

    /// Called when the socket disconnects, with the reason; its rooms are already left.
    public func onDisconnect(_ handler: @escaping DisconnectHandler) {
        onLoop { $0.disconnectHandlers.append(handler) }
    }

    /// Called when the socket is about to disconnect, while it is still in its rooms.
    public func onDisconnecting(_ handler: @escaping DisconnectHandler) {
        onLoop { $0.disconnectingHandlers.append(handler) }
    }

    // MARK: Emitting

    /// Emits an event to this client.
    public func emit(_ event: String, _ arguments: JSONValue...) {
        emit(event, arguments: arguments)
    }

    /// Emits an event to this client. With connection-state recovery and `recoverable`
    /// (the default), it goes through the adapter (with a cluster adapter, through the
    /// cluster's log) and gets an offset; with `recoverable: false` it is written straight
    /// to the client, on the socket's loop at once when called there: for an application
    /// that replays its own history and must keep it in line with its `local` broadcasts.
    public func emit(_ event: String, arguments: [JSONValue], recoverable: Bool = true) {
        let packet = SocketIOPacket(type: .event, namespace: namespace.name, data: .array([.string(event)] + arguments))
        if namespace.recovery != nil && recoverable {
            // As in the reference, an emit to one socket goes through the adapter like a
            // broadcast to the socket's own room, so it gets an offset and is replayed
            // after a recovery.
            namespace.broadcast([packet], filter: BroadcastFilter(rooms: [id]), onlyOn: eventLoop)
        } else {
            let encoded = SocketIOPacketEncoder.encode(packet)
            onLoop { socket in
                if socket.isConnected { socket.write(encoded) }
            }
        }
    }

    /// Writes a packet of a broadcast with acknowledgements (encoded once for every
    /// recipient, with an id from the namespace's own range) and hands the answer, if it
    /// comes, to `ack`. On the socket's loop.
    func writeWithSharedAck(_ packet: EncodedSocketIOPacket, id: Int, ack: @escaping @Sendable ([JSONValue]) -> Void) {
        eventLoop.assertInEventLoop()
        guard isConnected else { return }
        pendingAcks[id] = PendingAck(
            callback: { result in if case .success(let answer) = result { ack(answer) } },
            timer: nil
        )
        write(packet)
    }

    /// Emits an event and waits for the client's acknowledgement.
    public func emitWithAck(_ event: String, _ arguments: JSONValue..., timeout: TimeAmount) async throws -> [JSONValue] {
        try await withCheckedThrowingContinuation { continuation in
            emit(event, arguments: arguments, timeout: timeout) { continuation.resume(with: $0) }
        }
    }

    /// Emits an event and calls `ack` (on the socket's loop) with the client's answer, or
    /// with an error when it does not come within `timeout` or the socket disconnects.
    public func emit(
        _ event: String, arguments: [JSONValue], timeout: TimeAmount,
        ack: @escaping @Sendable (Result<[JSONValue], SocketIOAckError>) -> Void
    ) {
        onLoop { socket in
            guard socket.isConnected else {
                ack(.failure(.disconnected))
                return
            }
            let id = socket.nextAckID
            socket.nextAckID += 1
            let timer = socket.eventLoop.scheduleTask(in: timeout) { () -> Void in
                socket.pendingAcks.removeValue(forKey: id)?.callback(.failure(.timeout))
            }
            socket.pendingAcks[id] = PendingAck(callback: ack, timer: timer)
            let packet = SocketIOPacket(type: .event, namespace: socket.namespace.name, id: id, data: .array([.string(event)] + arguments))
            socket.write(SocketIOPacketEncoder.encode(packet))
        }
    }

    /// Broadcasts to everyone in `room` but this socket.
    public func to(_ room: String) -> BroadcastOperator {
        BroadcastOperator(namespace: namespace, filter: BroadcastFilter(rooms: [room], except: [id]))
    }

    /// The same as `to(_:)`.
    public func `in`(_ room: String) -> BroadcastOperator { to(room) }

    /// Broadcasts to everyone but those in `room` and this socket.
    public func except(_ room: String) -> BroadcastOperator {
        BroadcastOperator(namespace: namespace, filter: BroadcastFilter(except: [room, id]))
    }

    /// Broadcasts to every socket of the namespace but this one.
    public var broadcast: BroadcastOperator {
        BroadcastOperator(namespace: namespace, filter: BroadcastFilter(except: [id]))
    }

    // MARK: Rooms

    /// Joins `room`. With connection-state recovery, the room's broadcasts reach the socket
    /// from the next offset on, live and in a recovery replay alike (`RoomMemberships`).
    public func join(_ room: String) {
        onLoop { socket in
            guard !socket.memberships.contains(room) else { return }
            let shard = socket.namespace.local.shard(for: socket.eventLoop)
            let since = shard.joinOffset
            socket.memberships.join(room, from: since)
            guard socket.isConnected else { return }
            shard.join(socket, room: room, since: since)
            socket.sessionChanged()
            socket.instrument?.socket(socket, joined: room)
        }
    }

    /// Leaves `room`; a recovery replay then leaves out all of the room's packets.
    public func leave(_ room: String) {
        onLoop { socket in
            guard socket.memberships.leave(room), socket.isConnected else { return }
            socket.namespace.local.shard(for: socket.eventLoop).leave(socket, room: room)
            socket.sessionChanged()
            socket.instrument?.socket(socket, left: room)
        }
    }

    // MARK: Disconnecting

    /// Disconnects from the namespace (the client is told with a DISCONNECT packet). With
    /// `close`, the whole connection is closed, with every namespace on it.
    public func disconnect(close: Bool = false) {
        onLoop { socket in
            if close {
                socket.connection.disconnectAll()
            } else {
                socket.connection.disconnect(socket)
            }
        }
    }

    /// Completes when the client has taken in what was sent so far (its transport is back
    /// under its bound: see `EngineIOSession.whenWritable()`); fails with
    /// `SocketIODisconnectedError` once the connection is gone. A producer of a long stream
    /// waits on it between pieces, so a slow reader holds it back instead of filling memory.
    public func whenWritable() -> EventLoopFuture<Void> {
        connection.session.whenWritable().flatMapErrorThrowing { _ in throw SocketIODisconnectedError() }
    }

    /// Closes the connection underneath without a Socket.IO DISCONNECT, as a lost link would
    /// (reason "forced close", recoverable): the client reconnects by itself and, with
    /// connection-state recovery on, resumes this session.
    public func dropConnection() {
        connection.session.close()
    }

    /// The transport carrying the socket's connection now: `.polling`, then `.websocket`
    /// once upgraded; nil once it is closed. Read it on `eventLoop`.
    public var transport: SocketIOTransport? {
        connection.session.transport.map { $0 == .websocket ? .websocket : .polling }
    }

    // MARK: Internals (on eventLoop)

    func write(_ packet: EncodedSocketIOPacket, volatile: Bool = false) {
        connection.write(packet, volatile: volatile)
        connection.instrumentSent(packet, to: self)
    }

    func sendAck(id: Int, arguments: [JSONValue]) {
        let packet = SocketIOPacket(type: .ack, namespace: namespace.name, id: id, data: .array(arguments))
        let encoded = SocketIOPacketEncoder.encode(packet)
        onLoop { socket in
            if socket.isConnected { socket.write(encoded) }
        }
    }

    /// The CONNECT answer goes out: join the socket's rooms, send what it missed (a replay
    /// that covers the packets through offset `through`), tell the application.
    func didConnect(missedPackets: [EncodedSocketIOPacket], through: UInt64) {
        eventLoop.assertInEventLoop()
        if recovered { namespace.local.evictStaleSockets(id: id, keeping: self) }
        memberships.join(id, from: 0)
        recoveredThrough = through
        isConnected = true
        Self.connectedSockets.increment()
        namespace.local.shard(for: eventLoop).add(self)
        var answer: JSONObject = ["sid": .string(id)]
        if let pid { answer["pid"] = .string(pid) }
        write(SocketIOPacketEncoder.encode(SocketIOPacket(type: .connect, namespace: namespace.name, data: .object(answer))))
        for packet in missedPackets { write(packet) }
        sessionChanged()
        instrument?.socketConnected(self)
        namespace.fireConnection(self)
    }

    /// The server's instrument, if one is installed (`SocketIOServer.instrument(_:)`).
    var instrument: (any SocketIOInstrument)? { connection.router.instruments.instrument }

    /// Tells the adapter of the session as it is now (see `SocketIOAdapter.sessionUpdated`).
    private func sessionChanged() {
        guard let pid, !superseded else { return }
        namespace.adapter.sessionUpdated(PersistedSessionInfo(id: id, pid: pid, rooms: memberships, data: storedData))
    }

    func handle(_ packet: SocketIOPacket) {
        eventLoop.assertInEventLoop()
        switch packet.type {
        case .event, .binaryEvent:
            guard case .array(let values)? = packet.data, let first = values.first else { return }
            guard withinRateLimit() else {
                Self.rateLimited.increment()
                return
            }
            let name: String
            switch first {
            case .string(let string): name = string
            case .number(let number): name = JSONSerializer.string(.number(number))
            default: return
            }
            instrument?.socket(self, received: values)
            let event = SocketIOEvent(
                socket: self, name: name, arguments: Array(values.dropFirst()),
                ack: packet.id.map { SocketIOAck(socket: self, id: $0) }
            )
            for entry in handlers where entry.name == name { entry.handler(event) }
        case .ack, .binaryAck:
            guard let id = packet.id, let pending = pendingAcks.removeValue(forKey: id) else { return }
            pending.timer?.cancel()
            pending.callback(.success(packet.data?.arrayValue ?? []))
        case .connect, .disconnect, .connectError:
            break
        }
    }

    /// The socket is gone: keep its session if the link was lost, leave its rooms, fail
    /// pending acks, tell the application.
    func didClose(_ reason: SocketIODisconnectReason) {
        eventLoop.assertInEventLoop()
        guard isConnected else { return }
        for handler in disconnectingHandlers { handler(self, reason) }
        if let pid, !superseded {
            if reason.isRecoverable {
                namespace.adapter.persistSession(PersistedSessionInfo(id: id, pid: pid, rooms: memberships, data: storedData))
            } else {
                namespace.adapter.sessionEnded(pid: pid)
            }
        }
        namespace.local.shard(for: eventLoop).remove(self)
        isConnected = false
        Self.connectedSockets.decrement()
        let acks = pendingAcks
        pendingAcks = [:]
        for pending in acks.values {
            pending.timer?.cancel()
            pending.callback(.failure(.disconnected))
        }
        for handler in disconnectHandlers { handler(self, reason) }
        instrument?.socketDisconnected(self, reason: reason)
        handlers = []
        disconnectHandlers = []
        disconnectingHandlers = []
    }

    /// A newer socket recovered this one's session: close this stale connection without
    /// keeping its session or touching the rooms now held by the newer one.
    func supersede() {
        eventLoop.assertInEventLoop()
        superseded = true
        namespace.local.shard(for: eventLoop).remove(self)
        connection.close()
    }

    private func onLoop(_ body: @escaping @Sendable (SocketIOSocket) -> Void) {
        if eventLoop.inEventLoop {
            body(self)
        } else {
            eventLoop.execute { body(self) }
        }
    }
}
