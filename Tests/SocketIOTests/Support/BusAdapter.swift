import NIOConcurrencyHelpers
import NIOCore

@testable import SocketIO

/// A message bus in one process, standing in for a shared service (Redis, say): it numbers
/// every recoverable broadcast of a namespace, keeps them, and keeps the sessions of lost
/// links, for every server attached to it.
final class MessageBus: Sendable {
    struct Entry {
        let sequence: UInt64
        let packet: SocketIOPacket
        let filter: BroadcastFilter
    }

    private struct Namespace {
        var nodes: [any SocketIOAdapterHost] = []
        var log = RecoveryBuffer(maxAge: .seconds(120), maxCount: 10_000, maxBytes: 64 << 20)
    }

    private struct State {
        var namespaces: [String: Namespace] = [:]
        var sessions: [String: PersistedSessionInfo] = [:]
    }

    private let state = NIOLockedValueBox(State())

    func attach(_ host: any SocketIOAdapterHost) {
        state.withLockedValue { $0.namespaces[host.namespace, default: Namespace()].nodes.append(host) }
    }

    /// Publishes to every node: each encodes once for its own sockets. Under the bus's
    /// lock, so that every node sees a namespace's offsets in order.
    func publish(_ packets: [SocketIOPacket], namespace: String, filter: BroadcastFilter, recoverable: Bool, from origin: any SocketIOAdapterHost, onlyOn eventLoop: (any EventLoop)?) {
        state.withLockedValue { state in
            var space = state.namespaces[namespace, default: Namespace()]
            var numbered: [(SocketIOPacket, UInt64?)] = []
            for packet in packets {
                guard recoverable else {
                    numbered.append((packet, nil))
                    continue
                }
                let sequence = space.log.takeSequence()
                let encoded = SocketIOPacketEncoder.encode(packet, offset: sequence)
                space.log.append(sequence: sequence, packet: encoded, filter: filter, now: .now())
                numbered.append((packet, sequence))
            }
            for node in space.nodes {
                let encoded = numbered.map { packet, sequence in
                    sequence.map { SocketIOPacketEncoder.encode(packet, offset: $0) } ?? SocketIOPacketEncoder.encode(packet)
                }
                node.deliverLocally(encoded, filter: filter, onlyOn: (node as AnyObject) === (origin as AnyObject) ? eventLoop : nil)
            }
            state.namespaces[namespace] = space
        }
    }

    func nodes(of namespace: String) -> [any SocketIOAdapterHost] {
        state.withLockedValue { $0.namespaces[namespace]?.nodes ?? [] }
    }

    func persist(_ session: PersistedSessionInfo) {
        state.withLockedValue { $0.sessions[session.pid] = session }
    }

    func restore(pid: String, offset: String, namespace: String) -> RestoredSession? {
        state.withLockedValue { state in
            guard let session = state.sessions.removeValue(forKey: pid),
                let missed = state.namespaces[namespace]?.log.packets(after: offset, for: session.rooms, now: .now())
            else { return nil }
            return RestoredSession(
                id: session.id, pid: pid, rooms: session.rooms, data: session.data, missedPackets: missed.packets, through: missed.through
            )
        }
    }

    func packets(after sequence: UInt64, for memberships: RoomMemberships, namespace: String) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        state.withLockedValue { $0.namespaces[namespace]?.log.packets(following: sequence, for: memberships) }
    }
}

/// A test-only adapter over `MessageBus`: what a cluster adapter does, without a network.
final class BusAdapter: SocketIOAdapter {
    let bus: MessageBus
    let host: any SocketIOAdapterHost

    init(bus: MessageBus, host: any SocketIOAdapterHost) {
        self.bus = bus
        self.host = host
        bus.attach(host)
    }

    func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?) {
        bus.publish(packets, namespace: host.namespace, filter: filter, recoverable: recoverable, from: host, onlyOn: eventLoop)
    }

    func persistSession(_ session: PersistedSessionInfo) {
        bus.persist(session)
    }

    func restoreSession(pid: String, offset: String) async -> RestoredSession? {
        bus.restore(pid: pid, offset: offset, namespace: host.namespace)
    }

    func packets(after offset: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        bus.packets(after: offset, for: memberships, namespace: host.namespace)
    }

    func broadcastWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, timeout: TimeAmount) async -> BroadcastAcks {
        let nodes = bus.nodes(of: host.namespace)
        let collector = BroadcastAckCollector(reports: nodes.count, timeout: timeout)
        for node in nodes { collector.report(count: await node.sendWithAck(packet, filter: filter) { collector.add($0) }) }
        return await collector.result
    }

    func perform(_ operation: SocketOperation, on filter: BroadcastFilter, timeout: TimeAmount) async throws -> [SocketDescription] {
        var described: [SocketDescription] = []
        for node in bus.nodes(of: host.namespace) { described += await node.perform(operation, on: filter) }
        return described
    }
}
