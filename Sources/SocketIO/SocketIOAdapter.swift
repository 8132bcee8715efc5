import NIOConcurrencyHelpers
import NIOCore

/// Where a namespace keeps its sockets and rooms, sends its broadcasts, and keeps the
/// sessions of sockets that lost their link. `InMemoryAdapter` serves one process; a
/// cluster adapter would implement the same calls over a message bus.
public protocol SocketIOAdapter: Sendable {
    /// Registers a connected socket (with the rooms it is already in). Called on its loop.
    func add(_ socket: SocketIOSocket)
    /// The offset the next recoverable broadcast will get (0 without recovery): a room
    /// joined now takes effect from it (`RoomMemberships`).
    func nextSequence() -> UInt64
    /// Called on the socket's loop after `socket.memberships` gained `room`, from `since`.
    func join(_ socket: SocketIOSocket, room: String, since: UInt64)
    /// Called on the socket's loop after `socket.memberships` lost `room`.
    func leave(_ socket: SocketIOSocket, room: String)
    /// Forgets a disconnected socket. Called on its loop.
    func remove(_ socket: SocketIOSocket)
    /// Sends an event to the sockets `filter` selects. With `recoverable`, the packet gets
    /// an offset as its last argument and is kept for connection-state recovery.
    /// `onlyOn` restricts delivery to the sockets of one event loop (an emit to one socket).
    func broadcast(_ packet: SocketIOPacket, filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?)
    /// Sends several events to the same sockets, in order, with one hop per event loop for
    /// all of them (a group commit's messages, say).
    func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool)
    /// Keeps a disconnected socket's session for recovery.
    func persistSession(_ session: PersistedSessionInfo)
    /// Takes back a session and the packets it missed after `offset`; nil if it cannot be
    /// recovered. A session can be restored once.
    func restoreSession(pid: String, offset: String) -> RestoredSession?
    /// The packets for `memberships` after `sequence`, through the last one buffered; nil
    /// if some were dropped. For a restored socket whose middlewares ran in between.
    func packets(following sequence: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)?
    /// Closes any socket other than `keeping` that holds `id` (a stale duplicate of a
    /// recovered session on a half-open link).
    func evictStaleSockets(id: String, keeping: SocketIOSocket)
}

/// A session to keep for recovery.
public struct PersistedSessionInfo: Sendable {
    public var id: String
    public var pid: String
    public var rooms: RoomMemberships
    public var data: JSONValue
}

/// A session taken back for recovery, with the packets its socket missed, in order.
public struct RestoredSession: Sendable {
    public var id: String
    public var pid: String
    public var rooms: RoomMemberships
    public var data: JSONValue
    public var missedPackets: [EncodedSocketIOPacket]
    /// The offset of the last packet the replay covers: broadcasts up to it that are still
    /// on their way to the socket's event loop are not delivered to it a second time.
    public var through: UInt64
}

/// The adapter of one process: a shard of sockets per event loop, a recovery buffer and
/// a session store per namespace.
public final class InMemoryAdapter: SocketIOAdapter {
    private let recovery: ConnectionStateRecovery?

    /// The shards by event loop. Read once per connection and per broadcast.
    private let shards = NIOLockedValueBox<(byLoop: [ObjectIdentifier: AdapterShard], all: [AdapterShard])>(([:], []))

    /// Offsets, buffered packets and the order in which broadcasts reach each loop. One
    /// lock per recoverable broadcast: taking the offset and queueing the deliveries under
    /// it makes every loop see broadcasts in offset order, so a client's last offset
    /// always covers everything before it.
    private let buffer: NIOLockedValueBox<RecoveryBuffer>?

    private let sessions = NIOLockedValueBox<[String: PersistedSession]>([:])

    public init(recovery: ConnectionStateRecovery?) {
        self.recovery = recovery
        self.buffer = recovery.map {
            NIOLockedValueBox(RecoveryBuffer(maxAge: $0.maxDisconnectionDuration, maxCount: $0.maxBufferedPackets, maxBytes: $0.maxBufferedBytes))
        }
    }

    func shard(for eventLoop: any EventLoop) -> AdapterShard {
        let key = ObjectIdentifier(eventLoop)
        return shards.withLockedValue { shards in
            if let shard = shards.byLoop[key] { return shard }
            let shard = AdapterShard(eventLoop: eventLoop)
            shards.byLoop[key] = shard
            shards.all.append(shard)
            return shard
        }
    }

    private var allShards: [AdapterShard] { shards.withLockedValue { $0.all } }

    public func add(_ socket: SocketIOSocket) { shard(for: socket.eventLoop).add(socket) }
    public func nextSequence() -> UInt64 { buffer?.withLockedValue { $0.nextSequence } ?? 0 }
    public func join(_ socket: SocketIOSocket, room: String, since: UInt64) { shard(for: socket.eventLoop).join(socket, room: room, since: since) }
    public func leave(_ socket: SocketIOSocket, room: String) { shard(for: socket.eventLoop).leave(socket, room: room) }
    public func remove(_ socket: SocketIOSocket) { shard(for: socket.eventLoop).remove(socket) }

    /// The sockets connected to this namespace, counted on every loop.
    public func socketCount() async -> Int {
        var total = 0
        for shard in allShards {
            total += (try? await shard.eventLoop.submit { shard.socketCount }.get()) ?? 0
        }
        return total
    }

    public func broadcast(_ packet: SocketIOPacket, filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?) {
        let targets = eventLoop.map { [shard(for: $0)] } ?? allShards
        guard recoverable, let buffer else {
            let encoded = SocketIOPacketEncoder.encode(packet)
            for shard in targets { shard.eventLoop.execute { shard.deliver(encoded, filter: filter) } }
            return
        }
        buffer.withLockedValue { buffer in
            let encoded = Self.encodeWithOffset(packet, filter: filter, into: &buffer)
            for shard in targets { shard.eventLoop.execute { shard.deliver(encoded, filter: filter) } }
        }
    }

    public func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool) {
        guard !packets.isEmpty else { return }
        let targets = allShards
        guard recoverable, let buffer else {
            let encoded = packets.map(SocketIOPacketEncoder.encode)
            for shard in targets { shard.eventLoop.execute { for packet in encoded { shard.deliver(packet, filter: filter) } } }
            return
        }
        buffer.withLockedValue { buffer in
            let encoded = packets.map { Self.encodeWithOffset($0, filter: filter, into: &buffer) }
            for shard in targets { shard.eventLoop.execute { for packet in encoded { shard.deliver(packet, filter: filter) } } }
        }
    }

    /// Appends the next offset as the packet's last argument, encodes it, keeps it for
    /// recovery. Called with the buffer's lock held.
    private static func encodeWithOffset(_ packet: SocketIOPacket, filter: BroadcastFilter, into buffer: inout RecoveryBuffer) -> EncodedSocketIOPacket {
        let sequence = buffer.takeSequence()
        var packet = packet
        if case .array(var args) = packet.data {
            args.append(.string(String(sequence)))
            packet.data = .array(args)
        }
        var encoded = SocketIOPacketEncoder.encode(packet)
        encoded.sequence = sequence
        buffer.append(sequence: sequence, packet: encoded, filter: filter, now: .now())
        return encoded
    }

    public func persistSession(_ session: PersistedSessionInfo) {
        guard let recovery else { return }
        let now = NIODeadline.now()
        sessions.withLockedValue { sessions in
            sessions[session.pid] = PersistedSession(id: session.id, pid: session.pid, rooms: session.rooms, data: session.data, disconnectedAt: now)
            // Expired sessions are dropped as new ones arrive; the scan is amortised by
            // running it only when the store has doubled since the last one.
            if sessions.count >= 64 && sessions.count.nonzeroBitCount == 1 {
                sessions = sessions.filter { $0.value.disconnectedAt + recovery.maxDisconnectionDuration >= now }
            }
        }
    }

    public func restoreSession(pid: String, offset: String) -> RestoredSession? {
        guard let recovery, let buffer else { return nil }
        let now = NIODeadline.now()
        guard let session = sessions.withLockedValue({ $0.removeValue(forKey: pid) }),
            session.disconnectedAt + recovery.maxDisconnectionDuration >= now
        else {
            return nil
        }
        guard let missed = buffer.withLockedValue({ $0.packets(after: offset, for: session.rooms, now: now) }) else {
            return nil
        }
        return RestoredSession(
            id: session.id, pid: session.pid, rooms: session.rooms, data: session.data, missedPackets: missed.packets, through: missed.through
        )
    }

    public func packets(following sequence: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        buffer?.withLockedValue { $0.packets(following: sequence, for: memberships) }
    }

    public func evictStaleSockets(id: String, keeping: SocketIOSocket) {
        for shard in allShards {
            let evict: @Sendable () -> Void = {
                if let stale = shard.socket(id: id), stale !== keeping { stale.supersede() }
            }
            if shard.eventLoop.inEventLoop { evict() } else { shard.eventLoop.execute(evict) }
        }
    }
}
