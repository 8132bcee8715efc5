import EngineIO
import NIOConcurrencyHelpers
import NIOCore

/// The sockets of one namespace in this process, a shard per event loop, and delivery to
/// them: what the namespace offers its adapter (`SocketIOAdapterHost`).
final class LocalSockets: SocketIOAdapterHost {
    let namespace: String
    private let shards = EventLoopRegistry { SocketShard(eventLoop: $0) }
    /// The namespace, for events from other nodes; set once, right after both exist.
    private let owner = NIOLockedValueBox<WeakNamespace>(WeakNamespace())

    private struct WeakNamespace {
        weak var value: SocketIONamespace?
    }

    init(namespace: String) {
        self.namespace = namespace
    }

    /// The namespace these sockets belong to (weak: the namespace owns them).
    var namespaceObject: SocketIONamespace? {
        get { owner.withLockedValue { $0.value } }
        set { owner.withLockedValue { $0.value = newValue } }
    }

    func perform(_ operation: SocketOperation, on filter: BroadcastFilter) async -> [SocketDescription] {
        var described: [SocketDescription] = []
        for shard in shards.values {
            let found = try? await shard.eventLoop.submit { () -> [SocketDescription] in
                let sockets = shard.sockets(matching: filter)
                switch operation {
                case .fetch:
                    return sockets.map { SocketDescription(id: $0.id, rooms: $0.memberships.rooms, data: $0.data, auth: $0.handshake.auth) }
                case .join(let rooms):
                    for socket in sockets { for room in rooms { socket.join(room) } }
                case .leave(let rooms):
                    for socket in sockets { for room in rooms { socket.leave(room) } }
                case .disconnect(let close):
                    for socket in sockets { socket.disconnect(close: close) }
                }
                return []
            }.get()
            described += found ?? []
        }
        return described
    }

    /// Ids of broadcasts with acks: one per broadcast for all its recipients (as the
    /// reference), from 2^40 up so that they never meet a socket's own ack ids.
    private static let broadcastAckIDs = NIOLockedValueBox(1 << 40)

    func sendWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, onAck: @escaping @Sendable ([JSONValue]) -> Void) async -> Int {
        var packet = packet
        let id = Self.broadcastAckIDs.withLockedValue { id in
            defer { id += 1 }
            return id
        }
        packet.id = id
        let encoded = SocketIOPacketEncoder.encode(packet)
        var count = 0
        for shard in shards.values {
            count +=
                (try? await shard.eventLoop.submit { () -> Int in
                    let sockets = shard.sockets(matching: filter)
                    for socket in sockets { socket.writeWithSharedAck(encoded, id: id, ack: onAck) }
                    return sockets.count
                }.get()) ?? 0
        }
        return count
    }

    func receivedServerSideEventWithAck(_ arguments: [JSONValue]) async -> [JSONValue]? {
        await namespaceObject?.receivedServerSideEventWithAck(arguments)
    }

    func receivedServerSideEvent(_ arguments: [JSONValue]) {
        namespaceObject?.receivedServerSideEvent(arguments)
    }

    func clusterResumed() {
        namespaceObject?.clusterResumed()
    }

    func shard(for eventLoop: any EventLoop) -> SocketShard {
        shards.value(for: eventLoop)
    }

    func deliverLocally(_ packets: [EncodedSocketIOPacket], filter: BroadcastFilter, onlyOn eventLoop: (any EventLoop)?) {
        guard !packets.isEmpty else { return }
        let targets = eventLoop.map { [shard(for: $0)] } ?? shards.values
        if packets.count == 1 {
            let packet = packets[0]
            for shard in targets { shard.eventLoop.execute { shard.deliver(packet, filter: filter) } }
        } else {
            for shard in targets { shard.eventLoop.execute { for packet in packets { shard.deliver(packet, filter: filter) } } }
        }
    }

    /// `body` for each socket here, on its loop.
    func map<Value: Sendable>(_ body: @escaping @Sendable (SocketIOSocket) -> Value) async -> [Value] {
        var values: [Value] = []
        for shard in shards.values {
            values += (try? await shard.eventLoop.submit { shard.allSockets.map(body) }.get()) ?? []
        }
        return values
    }

    /// How many sockets are connected here, counted on every loop.
    func socketCount() async -> Int {
        var total = 0
        for shard in shards.values {
            total += (try? await shard.eventLoop.submit { shard.socketCount }.get()) ?? 0
        }
        return total
    }

    /// Closes any socket other than `keeping` that holds `id`: a stale duplicate of a
    /// recovered session on a half-open link.
    func supersedeLocalSockets(id: String) {
        evictStaleSockets(id: id, keeping: nil)
    }

    func evictStaleSockets(id: String, keeping: SocketIOSocket?) {
        for shard in shards.values {
            let evict: @Sendable () -> Void = {
                if let stale = shard.socket(id: id), stale !== keeping { stale.supersede() }
            }
            if shard.eventLoop.inEventLoop { evict() } else { shard.eventLoop.execute(evict) }
        }
    }
}
