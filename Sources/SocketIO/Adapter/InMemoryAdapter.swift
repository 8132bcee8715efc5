import NIOConcurrencyHelpers
import NIOCore

/// The adapter of one process: broadcasts go straight to the namespace's local sockets;
/// with connection-state recovery, a recovery buffer and a session store per namespace.
public final class InMemoryAdapter: SocketIOAdapter {
    private let host: any SocketIOAdapterHost
    private let recovery: ConnectionStateRecovery?

    /// Offsets and buffered packets. One lock per recoverable broadcast: taking the offsets
    /// and queueing the local deliveries under it makes every event loop see the
    /// namespace's broadcasts in offset order.
    private let buffer: NIOLockedValueBox<RecoveryBuffer>?

    private let sessions = NIOLockedValueBox<[String: PersistedSession]>([:])

    /// An adapter delivering through `host`, keeping sessions and a recovery buffer when `recovery` is set.
    public init(host: any SocketIOAdapterHost, recovery: ConnectionStateRecovery?) {
        self.host = host
        self.recovery = recovery
        self.buffer = recovery.map {
            NIOLockedValueBox(RecoveryBuffer(maxAge: $0.maxDisconnectionDuration, maxCount: $0.maxBufferedPackets, maxBytes: $0.maxBufferedBytes))
        }
    }

    public func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?) {
        guard !packets.isEmpty else { return }
        guard recoverable, let buffer else {
            host.deliverLocally(packets.map(SocketIOPacketEncoder.encode), filter: filter, onlyOn: eventLoop)
            return
        }
        buffer.withLockedValue { buffer in
            let now = NIODeadline.now()
            let encoded = packets.map { packet in
                let sequence = buffer.takeSequence()
                let encoded = SocketIOPacketEncoder.encode(packet, offset: sequence)
                buffer.append(sequence: sequence, packet: encoded, filter: filter, now: now)
                return encoded
            }
            host.deliverLocally(encoded, filter: filter, onlyOn: eventLoop)
        }
    }

    public func perform(_ operation: SocketOperation, on filter: BroadcastFilter, timeout: TimeAmount) async throws -> [SocketDescription] {
        await host.perform(operation, on: filter)
    }

    public func broadcastWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, timeout: TimeAmount) async -> BroadcastAcks {
        let collector = BroadcastAckCollector(reports: 1, timeout: timeout)
        collector.report(count: await host.sendWithAck(packet, filter: filter) { collector.add($0) })
        return await collector.result
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

    public func restoreSession(pid: String, offset: String) async -> RestoredSession? {
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

    public func packets(after offset: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        buffer?.withLockedValue { $0.packets(following: offset, for: memberships) }
    }
}
