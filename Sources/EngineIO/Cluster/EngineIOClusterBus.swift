import NIOCore

/// What the engine needs from the nodes it runs beside: a way to send one node a message.
///
/// With a bus, any node serves any request of any session: a session's id starts with the
/// id of the node that holds it, and a polling request or WebSocket upgrade that reaches
/// another node is carried over the bus to that one (`ClusterEnvelope`). A balancer in front
/// of the nodes needs no sticky sessions.
///
/// Messages from one node to another must arrive in the order they were sent (one Redis
/// connection publishing, as `RedisCluster` does, keeps that order).
public protocol EngineIOClusterBus: Sendable {
    /// This node's id, in ASCII letters and digits. Every node of a cluster has an id of the
    /// same length: a session id is its node's id followed by random characters.
    var nodeID: String { get }

    /// Sends `message` to the node `node`. Succeeds with whether a node of that id listens
    /// (false: it left or died, and nothing will answer).
    func send(_ message: ByteBuffer, to node: String) -> EventLoopFuture<Bool>

    /// Called once by the engine, before it serves: where the messages for this node go.
    func onReceive(_ handler: @escaping @Sendable (ByteBuffer) -> Void)
}
