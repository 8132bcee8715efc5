import NIOConcurrencyHelpers
import NIOCore
import Redis
import SocketIO

/// The nodes that share one Redis (and one key prefix) form a cluster: a broadcast on any
/// of them reaches the sockets of all, and a session kept by one is recovered by any other.
///
/// One cluster per server process holds two Redis connections: one for commands, one
/// subscribed to a channel per namespace. Plug it in with
/// `configuration.adapter = cluster.makeAdapter`, then `start()` it before serving.
public final class RedisCluster: Sendable {
    /// Where Redis is, and how the cluster uses it.
    public struct Configuration: Sendable {
        /// The Redis every node shares: one server, or the primary Redis Sentinel names.
        public var endpoint: RedisEndpoint
        /// Prefixes every key and channel, so that deployments can share one Redis.
        public var keyPrefix: String = "socket.io"
        /// The bound on every Redis command.
        public var commandTimeout: TimeAmount = .seconds(5)
        /// How often this node says it is alive (a node silent for three is dropped).
        public var heartbeatInterval: TimeAmount = .seconds(5)

        /// The defaults, with Redis at `endpoint`.
        public init(endpoint: RedisEndpoint) {
            self.endpoint = endpoint
        }

        /// The defaults, with Redis at `address`.
        public init(address: RedisAddress) {
            self.init(endpoint: .server(address))
        }
    }

    /// The configuration the cluster was created with.
    public let configuration: Configuration
    /// This node's name in the cluster, random per process.
    public let nodeID: String
    let commands: RedisClient
    private let subscriber: RedisClient
    /// The adapters by the channel each listens on.
    private let adapters = NIOLockedValueBox<[String: ClusterAdapter]>([:])
    private let group: any EventLoopGroup
    private let firstSubscription: EventLoopPromise<Void>
    private let firstConnection: EventLoopPromise<Void>
    private let firstHeartbeat: EventLoopPromise<Void>
    private let liveNodes = NIOLockedValueBox(1)
    private let heartbeats = NIOLockedValueBox<RepeatedTask?>(nil)
    private let lastHeartbeat = NIOLockedValueBox<Int64>(0)
    /// A heartbeat has gone through (until then one is tried every fifth of an interval).
    private let hasCounted = NIOLockedValueBox(false)
    let keys: ClusterKeys
    private let waiters: Waiters
    /// Where the engine's messages for this node go (`EngineIOClusterBus`).
    let engineReceiver = NIOLockedValueBox<Receiver?>(nil)

    /// A closure kept in a lock box, wrapped in a struct. A closure stored bare as a generic
    /// box's value is reabstracted on its way into every `withLockedValue` (which hands the
    /// value over `inout`) and again on its way back, and the box keeps the wrapped one: each
    /// access adds two thunks in front of it, so the n-th call runs through 2n of them (a
    /// profile showed a node spending a quarter of its time there after a minute of traffic,
    /// and the chain would end by overflowing the stack). A struct's field is not reabstracted.
    struct Receiver: Sendable {
        let receive: @Sendable (ByteBuffer) -> Void
    }

    /// A cluster node on `group`'s event loops; `start()` connects it.
    public init(configuration: Configuration, group: any EventLoopGroup) {
        let nodeID = (0..<16).map { _ in String("0123456789abcdef".randomElement()!) }.joined()
        self.nodeID = nodeID
        self.configuration = configuration
        self.group = group
        let waiters = Waiters()
        self.waiters = waiters
        let firstSubscription = group.any().makePromise(of: Void.self)
        let firstConnection = group.any().makePromise(of: Void.self)
        self.firstSubscription = firstSubscription
        self.firstConnection = firstConnection
        self.firstHeartbeat = group.any().makePromise(of: Void.self)
        self.keys = ClusterKeys(prefix: configuration.keyPrefix, namespace: "")
        self.commands = RedisClient(
            endpoint: configuration.endpoint, group: group,
            onConnect: { connection in
                firstConnection.succeed()
                return connection.eventLoop.makeSucceededVoidFuture()
            },
            onConnected: { waiters.connected() }
        )
        let adapters = self.adapters
        let engineChannel = ClusterKeys(prefix: configuration.keyPrefix, namespace: "").engineChannel(of: nodeID)
        let engineReceiver = self.engineReceiver
        self.subscriber = RedisClient(
            endpoint: configuration.endpoint, group: group,
            onMessage: { channel, payload in
                if channel == engineChannel {
                    engineReceiver.withLockedValue { $0 }?.receive(payload)
                } else {
                    guard let adapter = adapters.withLockedValue({ $0[channel] }), let (number, message) = RedisCluster.split(payload) else { return }
                    adapter.received(message, number: number)
                }
            },
            onConnect: { connection in
                // Subscribed again after every reconnect, one channel per command so that
                // each confirmation answers its own command; then each namespace reads
                // what it missed meanwhile.
                let all = adapters.withLockedValue { Array($0.values) }
                let channels = all.map { ClusterKeys(prefix: configuration.keyPrefix, namespace: $0.namespace).channel }
                let subscribed = ([engineChannel] + channels).map { connection.send("SUBSCRIBE", $0).map { _ in () } }
                return EventLoopFuture.andAllSucceed(subscribed, on: connection.eventLoop).map {
                    for adapter in all { adapter.resynchronize() }
                    firstSubscription.succeed()
                }
            },
            onConnected: { waiters.connected() }
        )
    }

    /// Connects to Redis (and keeps reconnecting until `shutdown()`).
    public func start() {
        waiters.isConnected.withLockedValue { [commands, subscriber] in $0 = .init { commands.isConnected && subscriber.isConnected } }
        commands.start()
        subscriber.start()
        let interval = configuration.heartbeatInterval
        let task = group.any().scheduleRepeatedTask(initialDelay: .zero, delay: .nanoseconds(interval.nanoseconds / 5)) { [weak self] _ in
            // Often at first (until the command connection is up), then every interval.
            guard let self else { return }
            if self.hasCounted.withLockedValue({ $0 }) && !self.heartbeatDue() { return }
            self.heartbeat()
        }
        heartbeats.withLockedValue { $0 = task }
    }

    /// Whether a heartbeat interval has passed since the last one written.
    private func heartbeatDue() -> Bool {
        let now = Self.milliseconds()
        return lastHeartbeat.withLockedValue { last in
            guard now - last >= configuration.heartbeatInterval.nanoseconds / 1_000_000 else { return false }
            last = now
            return true
        }
    }

    /// Leaves the cluster (the others stop counting this node at once) and closes both
    /// connections; the future completes when that is done, or when Redis did not answer.
    @discardableResult
    public func shutdown() -> EventLoopFuture<Void> {
        // Dropping the adapters also ends their references back to the cluster.
        let all = adapters.withLockedValue { adapters in
            defer { adapters = [:] }
            return Array(adapters.values)
        }
        for adapter in all { adapter.stop() }
        heartbeats.withLockedValue { $0?.cancel() }
        return send("HDEL", keys.nodes, nodeID).map { _ in () }.recover { _ in () }.map {
            self.subscriber.shutdown()
            self.commands.shutdown()
            self.firstSubscription.fail(RedisError.disconnected)  // if they never came
            self.firstConnection.fail(RedisError.disconnected)
            self.firstHeartbeat.fail(RedisError.disconnected)
            self.waiters.fail()
        }
    }

    /// Succeeds once both connections first came up and the namespaces that exist by then
    /// are subscribed: from then on this node takes part in the cluster's broadcasts.
    public var ready: EventLoopFuture<Void> {
        firstSubscription.futureResult.and(firstConnection.futureResult).and(firstHeartbeat.futureResult).map { _ in () }
    }

    /// Succeeds when both connections are up and subscribed (at once if they are now):
    /// after an outage, when this node is back in the cluster.
    public func connected() -> EventLoopFuture<Void> {
        let promise = group.any().makePromise(of: Void.self)
        waiters.add(promise)
        if isConnected { waiters.connected() }
        return promise.futureResult
    }

    /// How many nodes the cluster has now, this one included: those whose heartbeat (every
    /// `heartbeatInterval`, in a Redis hash) is recent; a node silent for three intervals
    /// is dropped. Requests to the other nodes wait for this many answers less one.
    public var nodeCount: Int { liveNodes.withLockedValue { $0 } }

    /// Writes this node's heartbeat and counts the live nodes now, rather than at the next
    /// interval (after nodes were added, say).
    @discardableResult
    public func refreshNodeCount() -> EventLoopFuture<Int> {
        heartbeat().map { self.nodeCount }
    }

    /// Writes this node's heartbeat and counts the live ones.
    @discardableResult
    private func heartbeat() -> EventLoopFuture<Void> {
        let now = Self.milliseconds()
        let interval = configuration.heartbeatInterval.nanoseconds / 1_000_000
        let key = keys.nodes
        let written = send("HSET", key, nodeID, String(now))
        return written.flatMap { _ in self.send("HGETALL", key) }.flatMap { reply in
            let fields = reply.array ?? []
            var live = 0
            var stale: [String] = []
            for index in stride(from: 0, to: fields.count - 1, by: 2) {
                guard let node = fields[index].string else { continue }
                if let seen = fields[index + 1].string.flatMap({ Int64($0) }), now - seen <= 3 * interval {
                    live += 1
                } else {
                    stale.append(node)
                }
            }
            self.liveNodes.withLockedValue { $0 = max(live, 1) }
            self.hasCounted.withLockedValue { $0 = true }
            self.firstHeartbeat.succeed()
            // Done once the dead are gone too, so that whoever counted sees them gone (a
            // failed HDEL is retried by the next heartbeat).
            guard !stale.isEmpty else { return written.eventLoop.makeSucceededVoidFuture() }
            return self.send(["HDEL", key].map { ByteBuffer(string: $0) } + stale.map { ByteBuffer(string: $0) }).map { _ in }.recover { _ in }
        }
    }

    static func milliseconds() -> Int64 { clusterMilliseconds() }

    /// Whether both connections are up.
    public var isConnected: Bool { commands.isConnected && subscriber.isConnected }

    /// Callers of `connected()` waiting for both connections.
    private final class Waiters: Sendable {
        private let promises = NIOLockedValueBox<[EventLoopPromise<Void>]>([])
        /// Set once both clients exist, so that `connected()` can ask them.
        let isConnected = NIOLockedValueBox<Check?>(nil)

        /// Wrapped for the reason `Receiver` is.
        struct Check: Sendable {
            let check: @Sendable () -> Bool
        }

        func add(_ promise: EventLoopPromise<Void>) { promises.withLockedValue { $0.append(promise) } }

        /// One connection came up: wake the waiters if the other is up too.
        func connected() {
            guard isConnected.withLockedValue({ $0?.check() }) == true else { return }
            for promise in promises.withLockedValue({ promises in defer { promises = [] }; return promises }) { promise.succeed() }
        }

        func fail() {
            for promise in promises.withLockedValue({ promises in defer { promises = [] }; return promises }) { promise.fail(RedisError.disconnected) }
        }
    }

    /// The adapter of one namespace: `SocketIOConfiguration.adapter`.
    @Sendable public func makeAdapter(host: any SocketIOAdapterHost, recovery: ConnectionStateRecovery?) -> any SocketIOAdapter {
        let adapter = ClusterAdapter(bus: self, host: host, recovery: recovery, group: group)
        let channel = ClusterKeys(prefix: configuration.keyPrefix, namespace: host.namespace).channel
        adapters.withLockedValue { $0[channel] = adapter }
        // Subscribe now if connected; otherwise the next connection subscribes it.
        _ = subscriber.send("SUBSCRIBE", channel)
        adapter.startRefreshing()
        return adapter
    }

    func send(_ arguments: [ByteBuffer]) -> EventLoopFuture<RESPValue> {
        commands.send(arguments, timeout: configuration.commandTimeout)
    }

    func send(_ arguments: String...) -> EventLoopFuture<RESPValue> {
        commands.send(arguments.map { ByteBuffer(string: $0) }, timeout: configuration.commandTimeout)
    }
}

/// The names one namespace uses in Redis.
struct ClusterKeys: Sendable {
    /// Where broadcasts are published.
    let channel: String
    /// The last number issued to a recoverable broadcast.
    let sequence: String
    /// The stream of recent recoverable broadcasts, by number.
    let log: String
    let sessionPrefix: String

    let prefix: String

    init(prefix: String, namespace: String) {
        self.prefix = prefix
        let base = "\(prefix)#\(namespace)#"
        channel = base
        sequence = base + "seq"
        log = base + "log"
        sessionPrefix = base + "session#"
    }

    func session(_ pid: String) -> String { sessionPrefix + pid }

    /// The cluster's heartbeats: node id → milliseconds since 1970.
    var nodes: String { prefix + "#nodes" }

    /// Where the engine's messages for node `node` are published.
    func engineChannel(of node: String) -> String { prefix + "#eio#" + node }
}
