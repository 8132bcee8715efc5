/// What `fetchSockets()`, `socketsJoin(_:)`, `socketsLeave(_:)` and `disconnectSockets()`
/// ask of the sockets a filter selects, on every node of a cluster (socket.io's
/// `fetchSockets`, `addSockets`, `delSockets`, `disconnectSockets`).
public enum SocketOperation: Sendable, Equatable {
    /// Describe them.
    case fetch
    /// Make them join these rooms.
    case join([String])
    /// Make them leave these rooms.
    case leave([String])
    /// Disconnect them (with `close`, their whole connection).
    case disconnect(close: Bool)
}

/// A socket as the node that holds it describes it (`BroadcastOperator.fetchSockets()`).
public struct SocketDescription: Sendable, Equatable {
    /// The socket id.
    public var id: String
    /// The rooms the socket is in, its own id among them.
    public var rooms: Set<String>
    /// The socket's `data`.
    public var data: JSONValue
    /// The CONNECT packet's payload.
    public var auth: JSONObject

    /// A description with these fields.
    public init(id: String, rooms: Set<String>, data: JSONValue, auth: JSONObject) {
        self.id = id
        self.rooms = rooms
        self.data = data
        self.auth = auth
    }
}

/// Fewer nodes answered than the cluster counts (socket.io: "timeout reached: only N
/// responses received out of M").
public struct SocketIOClusterTimeout: Error, Equatable, CustomStringConvertible {
    /// How many nodes answered.
    public let received: Int
    /// How many nodes the cluster counted when the request left.
    public let expected: Int

    /// The error for `received` answers out of `expected`.
    public init(received: Int, expected: Int) {
        self.received = received
        self.expected = expected
    }

    public var description: String { "timeout reached: only \(received) responses received out of \(expected)" }
}
