import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import SocketIO
@testable import SocketIORedis

/// The cluster adapter's bus in one process, standing in for Redis: numbers, a log and a
/// session store per namespace, delivery in publication order on one event loop, and the
/// faults a test asks for (a node that stops hearing, a bus that is away, answers lost).
final class InMemoryCluster: Sendable {
    private struct Namespace {
        var latest: UInt64?
        var log: [ClusterLogEntry] = []
        var subscribers: [(node: String, adapter: any ClusterBusSubscriber)] = []
    }

    private struct State {
        var namespaces: [String: Namespace] = [:]
        var sessions: [String: String] = [:]
        var nodes: [String] = []
        /// Nodes whose subscription drops what is published (until `hear`).
        var deaf: Set<String> = []
        /// Every operation fails at once, as with Redis away.
        var away = false
        /// The bus is stalled (as Redis in `DEBUG SLEEP`): publications wait, their answers
        /// time out at once, and they are delivered, in order, when the stall ends.
        var stalled = false
        var held: [(messages: [(ByteBuffer, UInt64?)], listeners: [any ClusterBusSubscriber])] = []
    }

    private let state = NIOLockedValueBox(State())
    /// Where every message is delivered, in the order the bus took them.
    private let loop = MultiThreadedEventLoopGroup.singleton.next()

    /// A new node of the cluster: its bus.
    func node() -> Node {
        let node = Node(cluster: self, id: String(UInt64.random(in: 0...UInt64.max), radix: 16))
        state.withLockedValue { $0.nodes.append(node.nodeID) }
        return node
    }

    /// `node` hears nothing published from now on.
    func deafen(_ node: Node) { state.withLockedValue { _ = $0.deaf.insert(node.nodeID) } }

    /// `node` hears again, and is told to catch up (as after Redis's subscription came back).
    func hear(_ node: Node) {
        let adapters = state.withLockedValue { state in
            state.deaf.remove(node.nodeID)
            return state.namespaces.values.flatMap { $0.subscribers.filter { $0.node == node.nodeID }.map(\.adapter) }
        }
        loop.execute { adapters.forEach { $0.resynchronize() } }
    }

    /// `node` hears again, without being told that it missed anything (its next message
    /// shows the hole).
    func hearSilently(_ node: Node) { state.withLockedValue { _ = $0.deaf.remove(node.nodeID) } }

    /// Whether the bus is away (every operation fails).
    func setAway(_ away: Bool) { state.withLockedValue { $0.away = away } }

    /// Stalls the bus: publications time out, and are made when `resume()` is called.
    func stall() { state.withLockedValue { $0.stalled = true } }

    /// Ends a stall: what was published meanwhile is delivered, in order.
    func resume() {
        let held = state.withLockedValue { state in
            state.stalled = false
            defer { state.held = [] }
            return state.held
        }
        loop.execute { held.forEach(Self.deliver) }
    }

    private static func deliver(_ messages: [(ByteBuffer, UInt64?)], to listeners: [any ClusterBusSubscriber]) {
        for (message, number) in messages {
            for listener in listeners { listener.received(message, number: number) }
        }
    }

    /// The bus of one node.
    final class Node: ClusterBus {
        let cluster: InMemoryCluster
        let nodeID: String

        init(cluster: InMemoryCluster, id: String) {
            self.cluster = cluster
            self.nodeID = id
        }

        /// `SocketIOConfiguration.adapter` for this node.
        @Sendable func makeAdapter(host: any SocketIOAdapterHost, recovery: ConnectionStateRecovery?) -> any SocketIOAdapter {
            let adapter = ClusterAdapter(bus: self, host: host, recovery: recovery, group: MultiThreadedEventLoopGroup.singleton)
            cluster.state.withLockedValue { $0.namespaces[host.namespace, default: Namespace()].subscribers.append((nodeID, adapter)) }
            adapter.startRefreshing()
            return adapter
        }

        var nodeCount: Int { cluster.state.withLockedValue { $0.nodes.count } }

        func countNodes() -> EventLoopFuture<Int> { cluster.run { $0.nodes.count } }

        func publishNumbered(_ messages: [ByteBuffer], namespace: String, logLength: Int) -> EventLoopFuture<Void> {
            cluster.publish(messages, namespace: namespace, numbered: true)
        }

        func publish(_ message: ByteBuffer, namespace: String) -> EventLoopFuture<Void> {
            cluster.publish([message], namespace: namespace, numbered: false)
        }

        func latestNumber(namespace: String) -> EventLoopFuture<UInt64?> {
            cluster.run { $0.namespaces[namespace]?.latest }
        }

        func readLog(namespace: String, from: UInt64, through: UInt64, limit: Int) -> EventLoopFuture<[ClusterLogEntry]> {
            cluster.run { state in
                Array((state.namespaces[namespace]?.log ?? []).filter { (from...through).contains($0.number) }.prefix(limit))
            }
        }

        func storeSession(_ record: String, pid: String, namespace: String, lasting: TimeAmount) {
            _ = cluster.run { $0.sessions[namespace + "#" + pid] = record }
        }

        func takeSession(pid: String, namespace: String) -> EventLoopFuture<String?> {
            cluster.run { $0.sessions.removeValue(forKey: namespace + "#" + pid) }
        }

        func deleteSession(pid: String, namespace: String) {
            _ = cluster.run { $0.sessions[namespace + "#" + pid] = nil }
        }
    }

    /// Runs an operation on the state, failing as Redis would while the bus is away.
    private func run<Result: Sendable>(_ operation: (inout State) -> Result) -> EventLoopFuture<Result> {
        state.withLockedValue { state in
            guard !state.away else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            return loop.makeSucceededFuture(operation(&state))
        }
    }

    private func publish(_ messages: [ByteBuffer], namespace: String, numbered: Bool) -> EventLoopFuture<Void> {
        state.withLockedValue { state in
            guard !state.away else { return loop.makeFailedFuture(ChannelError.ioOnClosedChannel) }
            var space = state.namespaces[namespace, default: Namespace()]
            var published: [(ByteBuffer, UInt64?)] = []
            for message in messages {
                guard numbered else {
                    published.append((message, nil))
                    continue
                }
                let number = (space.latest ?? 0) + 1
                space.latest = number
                space.log.append(ClusterLogEntry(number: number, milliseconds: clusterMilliseconds(), message: message))
                published.append((message, number))
            }
            state.namespaces[namespace] = space
            let messages = published
            let listeners = space.subscribers.filter { !state.deaf.contains($0.node) }.map(\.adapter)
            guard !state.stalled else {
                state.held.append((messages, listeners))
                return loop.makeFailedFuture(ChannelError.ioOnClosedChannel)  // timed out
            }
            // Queued under the lock: the loop delivers in the order the bus numbered.
            loop.execute { Self.deliver(messages, to: listeners) }
            return loop.makeSucceededVoidFuture()
        }
    }
}
