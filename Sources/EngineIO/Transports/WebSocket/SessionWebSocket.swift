import NIOCore
import NIOWebSocket

/// A WebSocket as a session sees it: this node's connection (`WebSocketConnection`), or one
/// that another node of the cluster holds for it (`RemoteWebSocket`). Its identity tells the
/// session which of its WebSockets (the active one or an upgrading one) an event came from.
protocol SessionWebSocket: AnyObject, Sendable {
    /// Writes packets as frames, in order. Safe from any thread.
    func write(_ packet: EngineIOOutboundPacket)
    func write(_ packets: [EngineIOOutboundPacket])
    /// Runs `body` once what was written so far has left.
    func afterFlushing(_ body: @escaping @Sendable () -> Void)
    /// Sends a close frame with `code` and closes, once; completes when the frame is written.
    @discardableResult
    func close(code: WebSocketErrorCode) -> EventLoopFuture<Void>
    /// Whether the WebSocket takes more without going over its outbound limit.
    var isWritable: Bool { get }
}

extension WebSocketConnection: SessionWebSocket {
    func write(_ packets: [EngineIOOutboundPacket]) {
        write(packets[...])
    }

    var isWritable: Bool { channel.isWritable }
}
