import Atomics

/// An event a client emitted, as an event handler receives it.
public struct SocketIOEvent: Sendable {
    /// The socket the event came from.
    public let socket: SocketIOSocket
    /// The event's name.
    public let name: String
    /// The arguments after the event name.
    public let arguments: [JSONValue]
    /// Present when the client asked for an acknowledgement.
    public let ack: SocketIOAck?
}

/// Answers one client acknowledgement request. Only the first call sends anything, as
/// in the reference server.
public final class SocketIOAck: Sendable {
    private let socket: SocketIOSocket
    private let id: Int
    private let sent = ManagedAtomic(false)

    init(socket: SocketIOSocket, id: Int) {
        self.socket = socket
        self.id = id
    }

    /// Answers with `arguments` (`ack("ok")`); only the first answer is sent.
    public func callAsFunction(_ arguments: JSONValue...) {
        send(arguments)
    }

    /// Answers with `arguments`; only the first answer is sent.
    public func send(_ arguments: [JSONValue]) {
        guard sent.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else { return }
        socket.sendAck(id: id, arguments: arguments)
    }
}
