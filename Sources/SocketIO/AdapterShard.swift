import NIOCore

/// The sockets of one namespace that live on one event loop, with their room index.
///
/// A broadcast visits each shard once, on the shard's own event loop, and writes the one
/// encoded packet to every matching socket there: no lock and no encoding per recipient.
final class AdapterShard: @unchecked Sendable {
    // @unchecked Sendable: `eventLoop` is immutable; `sockets` and `rooms` are read and
    // written only on `eventLoop` (every entry point asserts it), which is also the loop of
    // every socket stored here.

    let eventLoop: any EventLoop
    private var sockets: [String: SocketIOSocket] = [:]
    /// Room members by room, except each socket's own room (its id): `sockets` already
    /// indexes that one, and a set per connection would cost every idle socket memory.
    private var rooms: [String: Set<String>] = [:]

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    var socketCount: Int {
        eventLoop.assertInEventLoop()
        return sockets.count
    }

    func add(_ socket: SocketIOSocket) {
        eventLoop.assertInEventLoop()
        sockets[socket.id] = socket
        for room in socket.joinedRooms { addMember(socket.id, to: room) }
    }

    func join(_ socket: SocketIOSocket, room: String) {
        eventLoop.assertInEventLoop()
        guard sockets[socket.id] === socket else { return }
        addMember(socket.id, to: room)
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
        for room in socket.joinedRooms { removeMember(socket.id, from: room) }
    }

    func socket(id: String) -> SocketIOSocket? {
        eventLoop.assertInEventLoop()
        return sockets[id]
    }

    private func addMember(_ id: String, to room: String) {
        guard room != id else { return }  // a socket's own room is `sockets[id]`
        rooms[room, default: []].insert(id)
    }

    private func removeMember(_ id: String, from room: String) {
        guard room != id, var members = rooms[room] else { return }
        members.remove(id)
        rooms[room] = members.isEmpty ? nil : members
    }

    /// Writes `packet` to every socket here that `filter` selects.
    func deliver(_ packet: EncodedSocketIOPacket, filter: BroadcastFilter) {
        eventLoop.assertInEventLoop()
        if filter.rooms.isEmpty {
            for socket in sockets.values where filter.includes(socketRooms: socket.joinedRooms) {
                socket.write(packet, volatile: filter.volatile)
            }
        } else if filter.rooms.count == 1, let room = filter.rooms.first {
            forEachMember(of: room) { socket in
                guard filter.except.isEmpty || filter.includes(socketRooms: socket.joinedRooms) else { return }
                socket.write(packet, volatile: filter.volatile)
            }
        } else {
            var seen = Set<String>()
            for room in filter.rooms {
                forEachMember(of: room) { socket in
                    guard seen.insert(socket.id).inserted, filter.includes(socketRooms: socket.joinedRooms) else { return }
                    socket.write(packet, volatile: filter.volatile)
                }
            }
        }
    }

    /// The sockets in `room`: its indexed members, and the socket whose own room it is,
    /// unless that socket has left it.
    private func forEachMember(of room: String, _ body: (SocketIOSocket) -> Void) {
        if let members = rooms[room] {
            for id in members {
                if let socket = sockets[id] { body(socket) }
            }
        }
        if let owner = sockets[room], owner.joinedRooms.contains(room) { body(owner) }
    }
}
