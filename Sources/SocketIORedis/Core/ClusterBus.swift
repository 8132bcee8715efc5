import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What the cluster adapter (`ClusterAdapter`) needs of the medium between the nodes: a
/// channel per namespace that every node hears, a numbered log of that namespace's
/// recoverable broadcasts, a count of the live nodes, and a store for the sessions of lost
/// links. `RedisCluster` is one such bus; the tests run the adapter on one in memory.
///
/// Promises the adapter relies on:
/// - what one node publishes to a namespace, numbered or not, reaches every subscriber in
///   the order it was published; numbered messages reach them in number order;
/// - numbers are consecutive, and never reused: a bus that lost its data numbers on above
///   any number it issued before;
/// - a subscriber may miss messages (a dropped subscription): on resubscribing the bus calls
///   `resynchronize()`, and the adapter reads what it missed from the log.
protocol ClusterBus: AnyObject, Sendable {
    /// This node's id.
    var nodeID: String { get }
    /// The live nodes, this one included, as last counted.
    var nodeCount: Int { get }
    /// Counts the live nodes now (after nodes joined, say).
    func countNodes() -> EventLoopFuture<Int>

    /// Numbers `messages` consecutively, logs them (the log bounded to about `logLength`
    /// entries) and publishes each with its number to `namespace`'s subscribers.
    func publishNumbered(_ messages: [ByteBuffer], namespace: String, logLength: Int) -> EventLoopFuture<Void>
    /// Publishes `message` without a number, in order with this node's numbered ones.
    func publish(_ message: ByteBuffer, namespace: String) -> EventLoopFuture<Void>
    /// The last number issued in `namespace`, nil if none was.
    func latestNumber(namespace: String) -> EventLoopFuture<UInt64?>
    /// Logged messages of `namespace` numbered `from` through `through`, in number order, at
    /// most `limit`.
    func readLog(namespace: String, from: UInt64, through: UInt64, limit: Int) -> EventLoopFuture<[ClusterLogEntry]>

    /// Keeps a session record for `lasting` (a write replaces the last one).
    func storeSession(_ record: String, pid: String, namespace: String, lasting: TimeAmount)
    /// Takes a session record away: whichever node asks first gets it, no other does.
    func takeSession(pid: String, namespace: String) -> EventLoopFuture<String?>
    /// Forgets a session record.
    func deleteSession(pid: String, namespace: String)
}

/// The adapter's side of the bus.
protocol ClusterBusSubscriber: AnyObject, Sendable {
    /// A message published to the namespace (this node's own included), with its number
    /// if it was published numbered.
    func received(_ message: ByteBuffer, number: UInt64?)
    /// The subscription was down and is back: messages may have been missed.
    func resynchronize()
}

/// One entry of a namespace's log.
struct ClusterLogEntry: Sendable {
    var number: UInt64
    /// When it was logged, in milliseconds since 1970 (the bus's clock).
    var milliseconds: Int64
    var message: ByteBuffer
}

/// Wall-clock milliseconds since 1970, as the log entries' times.
func clusterMilliseconds() -> Int64 {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec) / 1_000_000
}
