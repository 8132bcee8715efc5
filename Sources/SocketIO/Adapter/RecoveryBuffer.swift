import DequeModule
import NIOCore

/// The packets a namespace broadcast recently, kept so that a reconnecting client can be
/// sent the ones it missed.
///
/// Offsets are consecutive integers, so finding a client's offset is an index computation,
/// not a scan. The buffer is bounded in count, in bytes and in age; a client whose offset
/// has been dropped cannot be recovered and connects afresh.
public struct RecoveryBuffer: Sendable {
    struct Entry {
        let sequence: UInt64
        let time: NIODeadline
        let packet: EncodedSocketIOPacket
        let filter: BroadcastFilter
        let size: Int
    }

    let maxAge: TimeAmount
    let maxCount: Int
    let maxBytes: Int

    private var entries = Deque<Entry>()
    private var bytes = 0
    /// The sequence number the next packet gets.
    public private(set) var nextSequence: UInt64 = 1

    /// An empty buffer that drops packets older than `maxAge`, and the oldest ones beyond `maxCount` packets or `maxBytes` bytes.
    public init(maxAge: TimeAmount, maxCount: Int, maxBytes: Int) {
        self.maxAge = maxAge
        self.maxCount = max(maxCount, 1)
        self.maxBytes = maxBytes
    }

    /// How many packets the buffer holds.
    public var count: Int { entries.count }
    var byteCount: Int { bytes }

    /// Takes the next offset. The caller appends it to the packet, encodes, then `append`s.
    mutating func takeSequence() -> UInt64 {
        defer { nextSequence += 1 }
        return nextSequence
    }

    /// Appends a packet numbered elsewhere (by a cluster's shared sequence), which must be
    /// the next one. After a jump (packets lost for good, as when Redis restarted empty)
    /// everything before is dropped: no offset before it can be proven whole any more.
    public mutating func appendNumbered(sequence: UInt64, packet: EncodedSocketIOPacket, filter: BroadcastFilter, now: NIODeadline) {
        if sequence != nextSequence {
            entries.removeAll()
            bytes = 0
        }
        nextSequence = sequence + 1
        append(sequence: sequence, packet: packet, filter: filter, now: now)
    }

    mutating func append(sequence: UInt64, packet: EncodedSocketIOPacket, filter: BroadcastFilter, now: NIODeadline) {
        let size = packet.text.byteCount + packet.attachments.reduce(0) { $0 + $1.byteCount }
        entries.append(Entry(sequence: sequence, time: now, packet: packet, filter: filter, size: size))
        bytes += size
        evict(now: now)
    }

    /// Drops packets beyond the count, byte and age bounds, oldest first.
    mutating func evict(now: NIODeadline) {
        while let first = entries.first,
            entries.count > maxCount || bytes > maxBytes || first.time + maxAge < now
        {
            bytes -= first.size
            entries.removeFirst()
        }
    }

    /// The packets after `offset` that a socket with `memberships` was sent, in order, and
    /// the offset of the last packet buffered (the replay covers everything up to it); nil
    /// when `offset` is not in the buffer (never issued, or already dropped).
    public func packets(after offset: String, for memberships: RoomMemberships, now: NIODeadline) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        guard let sequence = UInt64(offset), let first = entries.first else { return nil }
        // The offset itself must still be buffered: it proves nothing after it was dropped.
        guard sequence >= first.sequence, sequence < nextSequence else { return nil }
        guard entries[Int(sequence - first.sequence)].time + maxAge >= now else { return nil }
        return packets(following: sequence, for: memberships)
    }

    /// The packets after `sequence`, an offset the caller has already replayed through;
    /// nil when some of them were dropped since.
    public func packets(following sequence: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        let last = nextSequence - 1
        guard sequence < last else { return ([], last) }
        guard let first = entries.first, first.sequence <= sequence + 1 else { return nil }
        var missed: [EncodedSocketIOPacket] = []
        for index in Int(sequence + 1 - first.sequence)..<entries.count where entries[index].filter.includes(memberships, at: entries[index].sequence) {
            missed.append(entries[index].packet)
        }
        return (missed, last)
    }
}

/// What is kept of a socket that lost its link, until it comes back or expires.
struct PersistedSession: Sendable {
    let id: String
    let pid: String
    let rooms: RoomMemberships
    let data: JSONValue
    let disconnectedAt: NIODeadline
}
