import CoreMetrics
import NIOConcurrencyHelpers
import NIOCore

/// A namespace (`/` or one registered with `server.of(_:)`): its middlewares, its
/// connection handlers, its adapter, and broadcasts to its sockets.
public final class SocketIONamespace: Sendable {
    /// Runs before a socket connects; throw `SocketIOConnectError` to refuse it.
    public typealias Middleware = @Sendable (SocketIOSocket) async throws -> Void
    public typealias ConnectionHandler = @Sendable (SocketIOSocket) -> Void

    public let name: String
    public let adapter: InMemoryAdapter
    let recovery: ConnectionStateRecovery?

    private struct Handlers {
        var middlewares: [Middleware] = []
        var connection: [ConnectionHandler] = []
    }

    private let handlers = NIOLockedValueBox(Handlers())

    init(name: String, recovery: ConnectionStateRecovery?) {
        self.name = name
        self.recovery = recovery
        self.adapter = InMemoryAdapter(recovery: recovery)
    }

    /// Adds a connection middleware. Middlewares run in order, before `onConnection`.
    public func use(_ middleware: @escaping Middleware) {
        handlers.withLockedValue { $0.middlewares.append(middleware) }
    }

    /// Adds a handler for new sockets, called on the socket's event loop once it is
    /// connected (after its CONNECT answer and any recovered packets were written).
    public func onConnection(_ handler: @escaping ConnectionHandler) {
        handlers.withLockedValue { $0.connection.append(handler) }
    }

    // MARK: Broadcasting

    public var broadcastOperator: BroadcastOperator { BroadcastOperator(namespace: self) }

    public func to(_ room: String) -> BroadcastOperator { broadcastOperator.to(room) }
    public func `in`(_ room: String) -> BroadcastOperator { broadcastOperator.to(room) }
    public func except(_ room: String) -> BroadcastOperator { broadcastOperator.except(room) }
    public var volatile: BroadcastOperator { broadcastOperator.volatile }

    /// Emits to every socket of the namespace.
    public func emit(_ event: String, _ arguments: JSONValue...) {
        broadcastOperator.emit(event, arguments: arguments)
    }

    public func emit(_ event: String, arguments: [JSONValue]) {
        broadcastOperator.emit(event, arguments: arguments)
    }

    /// How many sockets are connected to the namespace.
    public func socketCount() async -> Int {
        await adapter.socketCount()
    }

    // MARK: Connecting

    /// Creates the socket for a CONNECT packet, restoring its session when the auth
    /// payload carries a recoverable `pid` and `offset`, and runs the middlewares.
    func connect(_ connection: SocketIOConnection, auth: JSONObject) {
        var restored: RestoredSession?
        if recovery != nil, case .string(let pid)? = auth["pid"], case .string(let offset)? = auth["offset"] {
            restored = adapter.restoreSession(pid: pid, offset: offset)
            Counter(label: "socketio_recoveries_total", dimensions: [("result", restored == nil ? "failed" : "succeeded")]).increment()
        }
        let socket = SocketIOSocket(namespace: self, connection: connection, auth: auth, restored: restored)
        let middlewares = handlers.withLockedValue { $0.middlewares }
        if middlewares.isEmpty || (restored != nil && recovery?.skipMiddlewares == true) {
            // Registered in this same loop task as the replay was read: nothing broadcast
            // in between can be missed.
            connection.accept(socket, missedPackets: restored?.missedPackets ?? [], through: restored?.through ?? 0)
            return
        }
        connection.connectionPending(name)
        let eventLoop = connection.eventLoop
        let adapter = self.adapter
        Task {
            do {
                for middleware in middlewares { try await middleware(socket) }
                eventLoop.execute {
                    guard let restored else { return connection.accept(socket) }
                    // Broadcasts went on while the middlewares ran: the replay takes in those
                    // too, up to now, in this loop task, before the socket is registered.
                    guard let tail = adapter.packets(following: restored.through, for: restored.rooms) else {
                        // Some were dropped from the buffer meanwhile: the replay cannot be
                        // whole. The client reconnects and, its session spent, starts afresh.
                        connection.close()
                        return
                    }
                    connection.accept(socket, missedPackets: restored.missedPackets + tail.packets, through: tail.through)
                }
            } catch {
                Counter(label: "socketio_connect_errors_total").increment()
                let refusal = (error as? SocketIOConnectError) ?? SocketIOConnectError(String(describing: error))
                eventLoop.execute { connection.refuse(socket, refusal) }
            }
        }
    }

    func fireConnection(_ socket: SocketIOSocket) {
        for handler in handlers.withLockedValue({ $0.connection }) { handler(socket) }
    }
}
