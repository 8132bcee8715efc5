import NIOCore

/// Where a namespace's broadcasts go, and where the sessions of sockets that lost their
/// link are kept: the seam between one process and several.
///
/// The adapter works on packets, rooms and socket ids, never on sockets: it decides which
/// nodes a broadcast reaches and, with connection-state recovery, numbers recoverable
/// packets and keeps them; each node's namespace delivers to its own sockets
/// (`SocketIOAdapterHost.deliverLocally`). `InMemoryAdapter` serves one process; an adapter
/// over a message bus serves several (as socket.io's `ClusterAdapter` and socketioxide's
/// `CoreAdapter` do).
///
/// Choose one per namespace with `SocketIOConfiguration.adapter`.
public protocol SocketIOAdapter: Sendable {
    /// Sends `packets`, in order, to the sockets `filter` selects, on every node that shares
    /// this adapter, each encoded once per node. With `recoverable`, each gets the next
    /// offset as its last argument (a string) and is kept for recovery, and the adapter
    /// hands them to the host for local delivery in offset order, never out of it: a
    /// room's membership takes effect at an offset (`RoomMemberships`), which only holds if
    /// every event loop sees a namespace's offsets in order. `onlyOn` restricts local
    /// delivery to the sockets of one event loop (a socket's own emit, which the reference
    /// sends to the room named by its id).
    func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?)

    /// Keeps the session of a socket whose link was lost, for `maxDisconnectionDuration`.
    func persistSession(_ session: PersistedSessionInfo)

    /// The session of a connected socket changed: it connected, joined or left a room, or
    /// its data was set. An adapter that keeps sessions outside the process writes it now,
    /// so that the socket can be recovered even if this process dies without a word
    /// (`persistSession` is never called then). Called on the socket's event loop.
    func sessionUpdated(_ session: PersistedSessionInfo)

    /// The socket left for good (a disconnect that is not recoverable): its session need
    /// not be kept.
    func sessionEnded(pid: String)

    /// Sends `[event, arguments…]` to the other nodes, whose hosts hand it to
    /// `receivedServerSideEvent`, in the order this node sent them.
    func serverSideEmit(_ arguments: [JSONValue])

    /// Sends `[event, arguments…]` to the other nodes and returns each one's answer
    /// (`receivedServerSideEventWithAck`); throws `SocketIOClusterTimeout` when fewer than
    /// the cluster's other nodes answer within `timeout`.
    func serverSideEmitWithAck(_ arguments: [JSONValue], timeout: TimeAmount) async throws -> [[JSONValue]]

    /// Sends `packet` (an event) to the sockets `filter` selects on every node, each asked
    /// for an acknowledgement; returns the answers that came within `timeout`.
    func broadcastWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, timeout: TimeAmount) async -> BroadcastAcks

    /// Applies `operation` to the sockets `filter` selects on every node (this one through
    /// `SocketIOAdapterHost.perform`); returns the descriptions `.fetch` asks for. Throws
    /// `SocketIOClusterTimeout` when a node does not answer.
    func perform(_ operation: SocketOperation, on filter: BroadcastFilter, timeout: TimeAmount) async throws -> [SocketDescription]

    /// Takes back a session, with the packets it missed after `offset` in order; nil when it
    /// cannot be recovered (unknown or expired, or its offset no longer kept). A session is
    /// restored once at most; a cluster adapter may hand it on while its socket is still
    /// connected elsewhere (a half-open link), and that socket is then closed.
    func restoreSession(pid: String, offset: String) async -> RestoredSession?

    /// The recoverable packets numbered after `offset` that `memberships` selects, as far
    /// as this node has delivered or queued them for delivery, and the last offset they
    /// cover; nil if some were dropped meanwhile. A restored socket's replay ends with
    /// these, read in the event-loop task that registers the socket, so that nothing
    /// broadcast while its session was being restored is missed (see
    /// `SocketIONamespace.connect`).
    func packets(after offset: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)?
}

extension SocketIOAdapter {
    /// A process-local adapter keeps sessions only when links are lost.
    public func sessionUpdated(_ session: PersistedSessionInfo) {}
    public func sessionEnded(pid: String) {}
    /// One process: no other node to tell.
    public func serverSideEmit(_ arguments: [JSONValue]) {}
    /// One process: no other node to answer.
    public func serverSideEmitWithAck(_ arguments: [JSONValue], timeout: TimeAmount) async throws -> [[JSONValue]] { [] }
}

/// What a namespace offers its adapter: delivery to the sockets of this process.
public protocol SocketIOAdapterHost: Sendable {
    /// The namespace's name (`/`, `/chat`…).
    var namespace: String { get }

    /// Writes each packet, as encoded, to every local socket `filter` selects: one hop per
    /// event loop for all of them, no encoding and no allocation per recipient. May be
    /// called from any thread; per event loop, packets are delivered in call order.
    func deliverLocally(_ packets: [EncodedSocketIOPacket], filter: BroadcastFilter, onlyOn eventLoop: (any EventLoop)?)

    /// Another node recovered the session of socket `id`: any socket of this process that
    /// still holds it (its link half-open) is closed, without keeping its session.
    func supersedeLocalSockets(id: String)

    /// `[event, arguments…]` that another node sent with `serverSideEmit`.
    func receivedServerSideEvent(_ arguments: [JSONValue])

    /// `[event, arguments…]` that another node sent with `serverSideEmitWithAck`: this
    /// node's answer, nil if it has no handler for the event.
    func receivedServerSideEventWithAck(_ arguments: [JSONValue]) async -> [JSONValue]?

    /// Applies `operation` to this process's sockets that `filter` selects.
    func perform(_ operation: SocketOperation, on filter: BroadcastFilter) async -> [SocketDescription]

    /// Writes `packet` to this process's sockets that `filter` selects, each asked for an
    /// acknowledgement that goes to `onAck`; returns how many were sent it.
    func sendWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, onAck: @escaping @Sendable ([JSONValue]) -> Void) async -> Int

    /// The adapter is back in touch with the other nodes after losing them.
    func clusterResumed()
}

/// A session to keep for recovery.
public struct PersistedSessionInfo: Sendable {
    /// The socket id, kept by the socket that recovers the session.
    public var id: String
    /// The private session id the client presents to recover.
    public var pid: String
    /// The rooms the socket was in, with the offsets they took effect from.
    public var rooms: RoomMemberships
    /// The socket's `data`.
    public var data: JSONValue

    /// A session with these fields.
    public init(id: String, pid: String, rooms: RoomMemberships, data: JSONValue) {
        self.id = id
        self.pid = pid
        self.rooms = rooms
        self.data = data
    }
}

/// A session taken back for recovery, with the packets its socket missed, in order.
public struct RestoredSession: Sendable {
    /// The socket id of the session, which the new socket takes.
    public var id: String
    /// The private session id.
    public var pid: String
    /// The rooms the socket was in, with their offsets.
    public var rooms: RoomMemberships
    /// The socket's `data` as it was kept.
    public var data: JSONValue
    /// The packets sent to the socket's rooms since the client's offset, in order.
    public var missedPackets: [EncodedSocketIOPacket]
    /// The offset of the last packet the replay covers: broadcasts up to it that are still
    /// on their way to the socket's event loop are not delivered to it a second time.
    public var through: UInt64

    /// A restored session with these fields.
    public init(id: String, pid: String, rooms: RoomMemberships, data: JSONValue, missedPackets: [EncodedSocketIOPacket], through: UInt64) {
        self.id = id
        self.pid = pid
        self.rooms = rooms
        self.data = data
        self.missedPackets = missedPackets
        self.through = through
    }
}

extension SocketIOPacketEncoder {
    /// Appends `sequence` as the packet's last argument (a string, as the official client
    /// expects an offset) and encodes it, remembering the offset.
    public static func encode(_ packet: SocketIOPacket, offset sequence: UInt64) -> EncodedSocketIOPacket {
        var packet = packet
        if case .array(var arguments) = packet.data {
            arguments.append(.string(String(sequence)))
            packet.data = .array(arguments)
        }
        var encoded = encode(packet)
        encoded.sequence = sequence
        return encoded
    }
}
