import NIOCore

/// The sockets of one namespace that live on one event loop, with their room index.
///
/// A broadcast visits each shard once, on the shard's own event loop, and writes the one
/// encoded packet to every matching socket there: no lock and no encoding per recipient.
final class SocketShard: @unchecked Sendable {
    // @unchecked Sendable: `eventLoop` is immutable; `sockets` and `rooms` are read and
    // written only on `eventLoop` (every entry point asserts it), which is also the loop of
    // every socket stored here.

    let eventLoop: any EventLoop
    private var sockets: [String: SocketIOSocket] = [:]
    /// Room members by room and socket id, except each socket's own room (its id):
    /// `sockets` already indexes that one, and a set per connection would cost every idle
    /// socket memory.
    private var rooms: [String: [String: Member]] = [:]

    /// A room member: the socket itself, so that a broadcast reaches it without a lookup by
    /// id per recipient, and the offset it joined from.
    private struct Member {
        let socket: SocketIOSocket
        let since: UInt64
    }
    /// The offset of the last recoverable packet delivered here. The adapter hands a
    /// namespace's packets to every loop in offset order, so a room joined now takes effect
    /// from the next one: the same point for live delivery and for a recovery replay.
    private var lastDelivered: UInt64 = 0

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    var socketCount: Int {
        eventLoop.assertInEventLoop()
        return sockets.count
    }

    var allSockets: Dictionary<String, SocketIOSocket>.Values {
        eventLoop.assertInEventLoop()
        return sockets.values
    }

    /// The offset from which a room joined now, on this loop, takes effect.
    var joinOffset: UInt64 {
        eventLoop.assertInEventLoop()
        return lastDelivered + 1
    }

    func add(_ socket: SocketIOSocket) {
        eventLoop.assertInEventLoop()
        // A recovered session's socket takes the id of one whose cleanup may still be
        // queued: the old socket's memberships go now, as that cleanup will leave them.
        if let previous = sockets.updateValue(socket, forKey: socket.id), previous !== socket {
            for room in previous.memberships.since.keys { removeMember(previous.id, from: room) }
        }
        for (room, since) in socket.memberships.since { addMember(socket, to: room, since: since) }
    }

    func join(_ socket: SocketIOSocket, room: String, since: UInt64) {
        eventLoop.assertInEventLoop()
        guard sockets[socket.id] === socket else { return }
        addMember(socket, to: room, since: since)
    }

    func leave(_ socket: SocketIOSocket, room: String) {
        eventLoop.assertInEventLoop()
        guard sockets[socket.id] === socket else { return }
        removeMember(socket.id, from: room)
    }

    /// Removes `socket` and its memberships, unless another socket has taken its id since
    /// (a recovered session), whose memberships must survive the stale one's cleanup.
    func remove(_ socket: SocketIOSocket) {
        eventLoop.assertInEventLoop()
        guard sockets[socket.id] === socket else { return }
        sockets[socket.id] = nil
        for room in socket.memberships.since.keys { removeMember(socket.id, from: room) }
    }

    /// The sockets here that a broadcast with `filter` would reach now (no offset).
    func sockets(matching filter: BroadcastFilter) -> [SocketIOSocket] {
        eventLoop.assertInEventLoop()
        if filter.rooms.isEmpty { return sockets.values.filter { filter.includes($0.memberships, at: nil) } }
        var seen = Set<String>()
        var found: [SocketIOSocket] = []
        for room in filter.rooms {
            forEachMember(of: room, at: nil) { socket in
                guard seen.insert(socket.id).inserted, filter.includes(socket.memberships, at: nil) else { return }
                found.append(socket)
            }
        }
        return found
    }

    func socket(id: String) -> SocketIOSocket? {
        eventLoop.assertInEventLoop()
        return sockets[id]
    }

    private func addMember(_ socket: SocketIOSocket, to room: String, since: UInt64) {
        guard room != socket.id else { return }  // a socket's own room is `sockets[id]`
        rooms[room, default: [:]][socket.id] = Member(socket: socket, since: since)
    }

    private func removeMember(_ id: String, from room: String) {
        guard room != id, var members = rooms[room] else { return }
        members.removeValue(forKey: id)
        rooms[room] = members.isEmpty ? nil : members
    }

    /// Writes `packet` to every socket here that `filter` selects.
    ///
    /// A recoverable packet (one with an offset) reaches a room member only from the offset
    /// it joined at (`RoomMemberships`), and never reaches a socket whose recovery replay
    /// already carried it: a restored socket is registered while broadcasts numbered before
    /// its replay may still be queued for this loop.
    func deliver(_ packet: EncodedSocketIOPacket, filter: BroadcastFilter) {
        eventLoop.assertInEventLoop()
        let sequence = packet.sequence
        if let sequence { lastDelivered = max(lastDelivered, sequence) }
        if filter.rooms.isEmpty {
            for socket in sockets.values where filter.includes(socket.memberships, at: sequence) {
                send(packet, to: socket, volatile: filter.volatile)
            }
        } else if filter.rooms.count == 1, let room = filter.rooms.first {
            forEachMember(of: room, at: sequence) { socket in
                guard filter.except.isEmpty || filter.includes(socket.memberships, at: sequence) else { return }
                send(packet, to: socket, volatile: filter.volatile)
            }
        } else {
            var seen = Set<String>()
            for room in filter.rooms {
                forEachMember(of: room, at: sequence) { socket in
                    guard seen.insert(socket.id).inserted, filter.includes(socket.memberships, at: sequence) else { return }
                    send(packet, to: socket, volatile: filter.volatile)
                }
            }
        }
    }

    private func send(_ packet: EncodedSocketIOPacket, to socket: SocketIOSocket, volatile: Bool) {
        if let sequence = packet.sequence, sequence <= socket.recoveredThrough { return }
        socket.write(packet, volatile: volatile)
    }

    /// The sockets in `room` for a packet numbered `sequence`: its indexed members that
    /// joined at or before it, and the socket whose own room it is, unless that socket has
    /// left it.
    private func forEachMember(of room: String, at sequence: UInt64?, _ body: (SocketIOSocket) -> Void) {
        if let members = rooms[room] {
            for member in members.values where sequence.map({ $0 >= member.since }) ?? true {
                body(member.socket)
            }
        }
        if let owner = sockets[room], owner.memberships.isMember(of: room, at: sequence) { body(owner) }
    }
}
