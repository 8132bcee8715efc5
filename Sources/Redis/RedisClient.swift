import NIOConcurrencyHelpers
import NIOCore

/// A connection to Redis that comes back by itself: when it drops (or Redis is away at
/// first), the client reconnects with backoff (100 ms, doubling up to 5 s) and calls
/// `onConnect` with each new connection, before any command of its users goes over it, so
/// that a subscriber resubscribes and a reader catches up. Commands sent while there is no
/// connection fail at once with `RedisError.disconnected`; every command is bounded by its
/// timeout.
///
/// With a ``RedisEndpoint/sentinel(_:primaryName:)`` endpoint each connection goes to the
/// primary the sentinels name, confirmed by `ROLE`; the backoff stops at 1 s, so that the
/// client finds a promoted replica within a second of the sentinels naming it. A failover
/// reaches the client as a lost connection (the old primary died, or the sentinels, on
/// demoting it, closed its clients) or as a `READONLY` answer, which closes the connection;
/// either way the client asks the sentinels again.
public final class RedisClient: Sendable {
    /// Prepares a new connection; the client waits for the future before using it.
    public typealias Connect = @Sendable (RedisConnection) -> EventLoopFuture<Void>

    private struct State {
        var connection: RedisConnection?
        /// Which attempt `connection` came from: a close from any other is not ours to handle.
        var attempt = 0
        var stopped = false
        var failures = 0
        /// The sentinel that answered last, asked first next time.
        var sentinel = 0
    }

    /// Where the client connects to.
    public let endpoint: RedisEndpoint
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())
    private let onMessage: (@Sendable (String, ByteBuffer) -> Void)?
    private let onConnect: Connect?
    private let onConnected: (@Sendable () -> Void)?

    /// `onConnect` prepares each new connection before it is used; `onConnected` hears
    /// when one is in use.
    public convenience init(
        address: RedisAddress, group: any EventLoopGroup, onMessage: (@Sendable (String, ByteBuffer) -> Void)? = nil,
        onConnect: Connect? = nil, onConnected: (@Sendable () -> Void)? = nil
    ) {
        self.init(endpoint: .server(address), group: group, onMessage: onMessage, onConnect: onConnect, onConnected: onConnected)
    }

    /// A client of the server or the sentinel-named primary at `endpoint`; see
    /// ``init(address:group:onMessage:onConnect:onConnected:)``.
    public init(
        endpoint: RedisEndpoint, group: any EventLoopGroup, onMessage: (@Sendable (String, ByteBuffer) -> Void)? = nil,
        onConnect: Connect? = nil, onConnected: (@Sendable () -> Void)? = nil
    ) {
        self.endpoint = endpoint
        self.group = group
        self.onMessage = onMessage
        self.onConnect = onConnect
        self.onConnected = onConnected
    }

    /// Starts connecting; the client keeps a connection until `shutdown()`.
    public func start() {
        connect()
    }

    /// Closes the connection and stops reconnecting; commands fail from then on.
    public func shutdown() {
        let connection = state.withLockedValue { state -> RedisConnection? in
            state.stopped = true
            defer { state.connection = nil }
            return state.connection
        }
        connection?.close()
    }

    /// Whether a connection is up now.
    public var isConnected: Bool {
        state.withLockedValue { $0.connection?.isActive ?? false }
    }

    /// Sends a command over the current connection; fails at once when there is none, or after `timeout`.
    public func send(_ arguments: [ByteBuffer], timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<RESPValue> {
        guard let connection = state.withLockedValue({ $0.connection }) else {
            return group.any().makeFailedFuture(RedisError.disconnected)
        }
        let answer = connection.send(arguments, timeout: timeout)
        guard case .sentinel = endpoint else { return answer }
        return answer.flatMapErrorThrowing { error in
            // A primary demoted behind the client's back (a partition the client did not
            // share): the next connection goes where the sentinels say.
            if case RedisError.server(let message) = error, message.hasPrefix("READONLY") { connection.close() }
            throw error
        }
    }

    /// Sends a command of text arguments (`send("GET", key)`); see `send(_:timeout:)`.
    public func send(_ arguments: String..., timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<RESPValue> {
        send(arguments.map { ByteBuffer(string: $0) }, timeout: timeout)
    }

    /// How long to wait before the next attempt after `failures` in a row: from 100 ms,
    /// doubling up to `limit`.
    static func backoff(afterFailures failures: Int, limit: TimeAmount = .seconds(5)) -> TimeAmount {
        min(.milliseconds(100 << min(max(failures - 1, 0), 6)), limit)
    }

    /// The server to connect to now: the fixed one, or the primary the sentinels name.
    private func target() -> EventLoopFuture<RedisAddress> {
        switch endpoint {
        case .server(let address):
            return group.any().makeSucceededFuture(address)
        case .sentinel(let sentinels, let name):
            let first = state.withLockedValue { $0.sentinel }
            return SentinelLookup.primary(named: name, sentinels: sentinels, from: first, group: group, timeout: .seconds(1))
                .map { found in
                    self.state.withLockedValue { $0.sentinel = found.sentinel }
                    return found.address
                }
        }
    }

    private func connect() {
        guard let attempt = state.withLockedValue({ state -> Int? in
            guard !state.stopped else { return nil }
            state.attempt += 1
            return state.attempt
        }) else { return }
        target().flatMap { address in
            RedisConnection.connect(
                host: address.host, port: address.port, group: self.group, onMessage: self.onMessage,
                onClose: { [weak self] in self?.connectionClosed(attempt: attempt) }
            )
        }
        .flatMap { connection -> EventLoopFuture<RedisConnection> in
            guard case .sentinel = self.endpoint else { return connection.eventLoop.makeSucceededFuture(connection) }
            return SentinelLookup.confirmPrimary(connection, timeout: .seconds(1)).map { connection }.flatMapErrorThrowing { error in
                connection.close()
                throw error
            }
        }
        .flatMap { connection -> EventLoopFuture<RedisConnection> in
            guard let onConnect = self.onConnect else { return connection.eventLoop.makeSucceededFuture(connection) }
            return onConnect(connection).map { connection }.flatMapErrorThrowing { error in
                connection.close()
                throw error
            }
        }
        .whenComplete { result in
            switch result {
            case .success(let connection):
                let keep = self.state.withLockedValue { state -> Bool in
                    guard !state.stopped, state.attempt == attempt, connection.isActive else { return false }
                    state.connection = connection
                    state.failures = 0
                    return true
                }
                if keep { self.onConnected?() }
                if !keep {
                    connection.close()
                    // Closed during onConnect: its close went unheeded, so try again here.
                    if !self.state.withLockedValue({ $0.stopped }) { self.retryLater() }
                }
            case .failure:
                self.retryLater()
            }
        }
    }

    private func connectionClosed(attempt: Int) {
        let retry = state.withLockedValue { state -> Bool in
            guard state.attempt == attempt, state.connection != nil else { return false }
            state.connection = nil
            return !state.stopped
        }
        if retry { retryLater() }
    }

    private func retryLater() {
        let failures = state.withLockedValue { state -> Int in
            state.failures += 1
            return state.failures
        }
        let limit: TimeAmount
        switch endpoint {
        case .server: limit = .seconds(5)
        case .sentinel: limit = .seconds(1)
        }
        group.any().scheduleTask(in: Self.backoff(afterFailures: failures, limit: limit)) { self.connect() }
    }
}
