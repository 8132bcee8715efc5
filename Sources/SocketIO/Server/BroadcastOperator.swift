import NIOCore

/// Chooses the recipients of a broadcast: `namespace.to("room").except("other").emit(…)`.
/// A value; each call returns a new operator.
public struct BroadcastOperator: Sendable {
    let namespace: SocketIONamespace
    var filter: BroadcastFilter
    /// Only this process's sockets, not the other nodes' (see `local`).
    var isLocal = false
    /// Numbered and kept for recovery, when the namespace has it (see `withoutRecovery`).
    var isRecoverable = true

    init(namespace: SocketIONamespace, filter: BroadcastFilter = BroadcastFilter()) {
        self.namespace = namespace
        self.filter = filter
    }

    /// Restricts to members of `room` (added to any rooms already chosen).
    public func to(_ room: String) -> BroadcastOperator {
        var next = self
        next.filter.rooms.insert(room)
        return next
    }

    /// Same as `to(_:)`.
    public func `in`(_ room: String) -> BroadcastOperator { to(room) }

    /// Restricts to members of any of `rooms` (the reference's `to([...])`): one copy of
    /// the filter for all of them, where chaining `to` would copy it once per room.
    public func to(_ rooms: some Sequence<String>) -> BroadcastOperator {
        var next = self
        next.filter.rooms.formUnion(rooms)
        return next
    }

    /// Leaves out members of `room`.
    public func except(_ room: String) -> BroadcastOperator {
        var next = self
        next.filter.except.insert(room)
        return next
    }

    /// The packet may be lost, and is not kept for connection-state recovery.
    public var volatile: BroadcastOperator {
        var next = self
        next.filter.volatile = true
        return next
    }

    /// Delivered as any broadcast, on every node, but not numbered and not kept for
    /// connection-state recovery: for events that matter only live (a monitor's reports),
    /// which would otherwise fill the recovery buffer. Unlike `volatile`, never dropped for
    /// a client that cannot take it at once.
    public var withoutRecovery: BroadcastOperator {
        var next = self
        next.isRecoverable = false
        return next
    }

    /// Only the sockets of this process, as socket.io's `io.local`: the adapter is
    /// bypassed, so the packets carry no offset and are not kept for connection-state
    /// recovery. For an application that distributes its own events between nodes.
    public var local: BroadcastOperator {
        var next = self
        next.isLocal = true
        return next
    }

    // MARK: The chosen sockets, on every node

    /// Describes the chosen sockets, on every node of the cluster (`fetchSockets`).
    public func fetchSockets(timeout: TimeAmount = .seconds(5)) async throws -> [SocketDescription] {
        try await namespace.adapter.perform(.fetch, on: filter, timeout: timeout)
    }

    /// Makes the chosen sockets, on every node, join `rooms` (`socketsJoin`).
    public func socketsJoin(_ rooms: String..., timeout: TimeAmount = .seconds(5)) async throws {
        _ = try await namespace.adapter.perform(.join(rooms), on: filter, timeout: timeout)
    }

    /// Makes the chosen sockets, on every node, leave `rooms` (`socketsLeave`).
    public func socketsLeave(_ rooms: String..., timeout: TimeAmount = .seconds(5)) async throws {
        _ = try await namespace.adapter.perform(.leave(rooms), on: filter, timeout: timeout)
    }

    /// Disconnects the chosen sockets, on every node (`disconnectSockets`); with `close`,
    /// their whole connections.
    public func disconnectSockets(close: Bool = false, timeout: TimeAmount = .seconds(5)) async throws {
        _ = try await namespace.adapter.perform(.disconnect(close: close), on: filter, timeout: timeout)
    }

    /// Emits the event to every chosen socket, on every node, each asked for an
    /// acknowledgement (socket.io's `timeout(ms).emitWithAck`); returns the answers that
    /// came within `timeout`, and whether every client answered.
    public func emitWithAck(_ event: String, arguments: [JSONValue], timeout: TimeAmount) async -> BroadcastAcks {
        let packet = SocketIOPacket(type: .event, namespace: namespace.name, data: .array([.string(event)] + arguments))
        return await namespace.adapter.broadcastWithAck(packet, filter: filter, timeout: timeout)
    }

    /// Encodes the event once and writes it to every chosen socket.
    public func emit(_ event: String, _ arguments: JSONValue...) {
        emit(event, arguments: arguments)
    }

    /// Emits several events of the same name, in order, with one hop per event loop for all
    /// of them: cheaper than one `emit` each when they leave together.
    public func emit(_ event: String, batch: [[JSONValue]]) {
        let packets = batch.map { SocketIOPacket(type: .event, namespace: namespace.name, data: .array([.string(event)] + $0)) }
        namespace.broadcast(packets, filter: filter, local: isLocal, recoverable: isRecoverable)
    }

    /// Encodes the event once and writes it to every chosen socket.
    public func emit(_ event: String, arguments: [JSONValue]) {
        let packet = SocketIOPacket(type: .event, namespace: namespace.name, data: .array([.string(event)] + arguments))
        namespace.broadcast([packet], filter: filter, local: isLocal, recoverable: isRecoverable)
    }
}
