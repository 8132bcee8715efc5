/// The rooms a socket is in, each with the offset from which the room's broadcasts reach
/// the socket.
///
/// With connection-state recovery every recoverable broadcast has an offset, and joining a
/// room takes effect at one: the socket receives the room's broadcasts numbered from the
/// offset at which it joined — live, and again in a recovery replay. Both paths ask this
/// value the same question, so they cannot disagree: a broadcast that was numbered before
/// the join but reached the socket's event loop after it is neither delivered nor replayed,
/// and one numbered after it is both. (Judged by room membership at replay time instead, a
/// socket that joined a room late would be replayed the room's earlier broadcasts too.)
/// Packets without an offset (no recovery, volatile) go by membership alone.
public struct RoomMemberships: Sendable, Hashable {
    /// The first offset at which each room's broadcasts reach the socket.
    public private(set) var since: [String: UInt64]

    /// Memberships in the given rooms, each from its offset.
    public init(since: [String: UInt64] = [:]) {
        self.since = since
    }

    /// The rooms, without their offsets.
    public var rooms: Set<String> { Set(since.keys) }
    /// Whether the socket is in no room at all.
    public var isEmpty: Bool { since.isEmpty }

    /// Whether the socket is in `room`, from whatever offset.
    public func contains(_ room: String) -> Bool { since[room] != nil }

    /// Whether a packet with offset `sequence` (nil: none) sent to `room` is for the socket.
    public func isMember(of room: String, at sequence: UInt64?) -> Bool {
        guard let start = since[room] else { return false }
        guard let sequence else { return true }
        return sequence >= start
    }

    /// Joins `room` from offset `start`. Returns false if the socket was already in it
    /// (its earlier start stands).
    @discardableResult
    public mutating func join(_ room: String, from start: UInt64) -> Bool {
        guard since[room] == nil else { return false }
        since[room] = start
        return true
    }

    /// Leaves `room`. Returns false if the socket was not in it.
    @discardableResult
    public mutating func leave(_ room: String) -> Bool {
        since.removeValue(forKey: room) != nil
    }
}
