import EngineIO
import NIOCore

/// The cluster is the engine's bus too (`EngineIOConfiguration.cluster`): each node listens
/// on a channel of its own, and a message for a node is published there, on the command
/// connection, which keeps one node's messages in order.
extension RedisCluster: EngineIOClusterBus {
    /// Publishes `message` on `node`'s channel; true if a node received it.
    public func send(_ message: ByteBuffer, to node: String) -> EventLoopFuture<Bool> {
        send([ByteBuffer(string: "PUBLISH"), ByteBuffer(string: keys.engineChannel(of: node)), message]).map { reply in
            (reply.integer ?? 0) > 0
        }
    }

    /// Where the engine's messages for this node go; set once, by the engine.
    public func onReceive(_ handler: @escaping @Sendable (ByteBuffer) -> Void) {
        engineReceiver.withLockedValue { $0 = Receiver(receive: handler) }
    }
}
