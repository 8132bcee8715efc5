/// Which sockets a broadcast is for: members of any of `rooms` (everyone when empty),
/// minus members of any of `except`. A socket is always a member of the room named by
/// its own id.
public struct BroadcastFilter: Sendable, Equatable {
    /// The rooms whose members get the broadcast; every socket of the namespace when empty.
    public var rooms: Set<String>
    /// Rooms whose members are left out, even when in one of `rooms`.
    public var except: Set<String>
    /// Volatile: skip a socket whose transport cannot take the packet right now (a
    /// polling client between two GETs, a WebSocket with a backlog), as the reference does.
    public var volatile: Bool

    /// A filter for the members of `rooms` (everyone when empty) outside `except`.
    public init(rooms: Set<String> = [], except: Set<String> = [], volatile: Bool = false) {
        self.rooms = rooms
        self.except = except
        self.volatile = volatile
    }

    /// Whether a socket with `memberships` receives the broadcast numbered `sequence` (nil:
    /// a packet without an offset, which goes by membership alone).
    public func includes(_ memberships: RoomMemberships, at sequence: UInt64?) -> Bool {
        if !except.isEmpty && except.contains(where: { memberships.isMember(of: $0, at: sequence) }) { return false }
        return rooms.isEmpty || rooms.contains { memberships.isMember(of: $0, at: sequence) }
    }
}
