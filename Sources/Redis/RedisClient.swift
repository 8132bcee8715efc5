import NIOConcurrencyHelpers
import NIOCore

/// Where a Redis server is: `redis://host:port`.
public struct RedisAddress: Sendable, Equatable {
    /// The host name or address.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// The server at `host:port`.
    public init(host: String, port: Int = 6379) {
        self.host = host
        self.port = port
    }

    /// Parses `redis://host[:port][/]`.
    public init?(url: String) {
        guard url.hasPrefix("redis://") else { return nil }
        let rest = url.dropFirst("redis://".count).prefix { $0 != "/" }
        let parts = rest.split(separator: ":", maxSplits: 1)
        guard let host = parts.first, !host.isEmpty else { return nil }
        self.host = String(host)
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
            self.port = port
        } else {
            self.port = 6379
        }
    }
}

/// A connection to Redis that comes back by itself: when it drops (or Redis is away at
/// first), the client reconnects with backoff (100 ms, doubling up to 5 s) and calls
/// `onConnect` with each new connection, before any command of its users goes over it, so
/// that a subscriber resubscribes and a reader catches up. Commands sent while there is no
/// connection fail at once with `RedisError.disconnected`; every command is bounded by its
/// timeout.
public final class RedisClient: Sendable {
    /// Prepares a new connection; the client waits for the future before using it.
    public typealias Connect = @Sendable (RedisConnection) -> EventLoopFuture<Void>

    private struct State {
        var connection: RedisConnection?
        /// Which attempt `connection` came from: a close from any other is not ours to handle.
        var attempt = 0
        var stopped = false
        var failures = 0
    }

    /// The server the client connects to.
    public let address: RedisAddress
    private let group: any EventLoopGroup
    private let state = NIOLockedValueBox(State())
    private let onMessage: (@Sendable (String, ByteBuffer) -> Void)?
    private let onConnect: Connect?
    private let onConnected: (@Sendable () -> Void)?

    /// `onConnect` prepares each new connection before it is used; `onConnected` hears
    /// when one is in use.
    public init(
        address: RedisAddress, group: any EventLoopGroup, onMessage: (@Sendable (String, ByteBuffer) -> Void)? = nil,
        onConnect: Connect? = nil, onConnected: (@Sendable () -> Void)? = nil
    ) {
        self.address = address
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
        return connection.send(arguments, timeout: timeout)
    }

    /// Sends a command of text arguments (`send("GET", key)`); see `send(_:timeout:)`.
    public func send(_ arguments: String..., timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<RESPValue> {
        send(arguments.map { ByteBuffer(string: $0) }, timeout: timeout)
    }

    /// How long to wait before the next attempt after `failures` in a row.
    static func backoff(afterFailures failures: Int) -> TimeAmount {
        .milliseconds(min(100 << min(max(failures - 1, 0), 6), 5_000))
    }

    private func connect() {
        guard let attempt = state.withLockedValue({ state -> Int? in
            guard !state.stopped else { return nil }
            state.attempt += 1
            return state.attempt
        }) else { return }
        RedisConnection.connect(
            host: address.host, port: address.port, group: group, onMessage: onMessage,
            onClose: { [weak self] in self?.connectionClosed(attempt: attempt) }
        )
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
        group.any().scheduleTask(in: Self.backoff(afterFailures: failures)) { self.connect() }
    }
}
