import Atomics
import NIOCore
import NIOWebSocket

/// A WebSocket that another node (the front) holds for a session of this one: the client's
/// upgrade reached that node. What the session writes goes to the front over the bus, which
/// writes it to the client; what the client sends comes back the same way.
final class RemoteWebSocket: SessionWebSocket {
    let key: SessionForwarder.RemoteKey
    private let forwarder: SessionForwarder
    private let eventLoop: any EventLoop
    private let closing = ManagedAtomic(false)
    /// The writes sent, numbered (on the session's loop, which alone writes).
    private let sent = ManagedAtomic<UInt64>(0)
    /// The number of the client's last message received (on the bus's thread).
    private let received = ManagedAtomic<UInt64>(0)
    private let writable = ManagedAtomic(true)

    init(key: SessionForwarder.RemoteKey, forwarder: SessionForwarder, eventLoop: any EventLoop) {
        self.key = key
        self.forwarder = forwarder
        self.eventLoop = eventLoop
    }

    func write(_ packet: EngineIOOutboundPacket) {
        write([packet])
    }

    func write(_ packets: [EngineIOOutboundPacket]) {
        guard !packets.isEmpty, !closing.load(ordering: .relaxed) else { return }
        let sequence = sent.wrappingIncrementThenLoad(ordering: .relaxed)
        forwarder.send(.webSocketWrite(id: key.id, sequence: sequence, packets: packets), to: key.node)
    }

    /// The bus keeps one node's messages in order: what follows is sent after what was written.
    func afterFlushing(_ body: @escaping @Sendable () -> Void) {
        body()
    }

    @discardableResult
    func close(code: WebSocketErrorCode) -> EventLoopFuture<Void> {
        if closing.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged {
            _ = forwarder.forgetRemoteWebSocket(key)
            var data = ByteBuffer()
            data.write(webSocketErrorCode: code)
            forwarder.send(.webSocketClose(id: key.id, code: data.readInteger(as: UInt16.self) ?? 1000), to: key.node)
        }
        return eventLoop.makeSucceededVoidFuture()
    }

    /// Whether message `sequence` from the client follows the last one: false if the bus lost
    /// one in between.
    func accepts(_ sequence: UInt64) -> Bool {
        received.compareExchange(expected: sequence - 1, desired: sequence, ordering: .relaxed).exchanged
    }

    /// The front's socket's writability, as the front last reported it (a bus hop late): the
    /// session's producers (`whenWritable`, volatile packets) wait for a relayed client as for
    /// one of this node's sockets. The front's socket drops a client that stays slow.
    var isWritable: Bool { writable.load(ordering: .relaxed) }

    /// The front reported a change (on the bus's thread; the session reads it on its loop).
    func writabilityChanged(_ isWritable: Bool) {
        writable.store(isWritable, ordering: .relaxed)
    }
}
