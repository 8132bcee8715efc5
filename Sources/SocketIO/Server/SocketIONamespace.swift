import Metrics
import NIOConcurrencyHelpers
import NIOCore

/// A namespace (`/` or one registered with `server.of(_:)`): its middlewares, its
/// connection handlers, its adapter, and broadcasts to its sockets.
public final class SocketIONamespace: Sendable {
    /// Runs before a socket connects; throw `SocketIOConnectError` to refuse it.
    public typealias Middleware = @Sendable (SocketIOSocket) async throws -> Void
    /// Runs once a socket has connected, on its event loop.
    public typealias ConnectionHandler = @Sendable (SocketIOSocket) -> Void

    /// The namespace's name, starting with `/`.
    public let name: String
    /// Where broadcasts go and lost links' sessions are kept (`SocketIOConfiguration.adapter`).
    public let adapter: any SocketIOAdapter
    let recovery: ConnectionStateRecovery?
    /// This process's sockets of the namespace, which the adapter delivers to.
    let local: LocalSockets

    private struct Handlers {
        var middlewares: [Middleware] = []
        var connection: [ConnectionHandler] = []
        var serverSide: [(event: String, handler: ServerSideHandler)] = []
        var serverSideWithAck: [(event: String, handler: ServerSideAckHandler)] = []
        var resumed: [@Sendable () -> Void] = []
    }

    /// Receives the arguments of an event another node sent with `serverSideEmit`.
    public typealias ServerSideHandler = @Sendable ([JSONValue]) -> Void
    /// Answers an event another node sent with `serverSideEmitWithAck`.
    public typealias ServerSideAckHandler = @Sendable ([JSONValue]) async -> [JSONValue]

    private let handlers = NIOLockedValueBox(Handlers())

    init(name: String, configuration: SocketIOConfiguration) {
        self.name = name
        self.recovery = configuration.connectionStateRecovery
        let local = LocalSockets(namespace: name)
        self.local = local
        self.adapter = configuration.adapter(local, configuration.connectionStateRecovery)
        local.namespaceObject = self
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

    // MARK: Between nodes

    /// Sends an event to the other nodes of the cluster (not to clients, not to this
    /// node), as socket.io's `serverSideEmit`; each node's `onServerSideEmit` handlers get
    /// it. The events of one node reach every other in the order it sent them; with a
    /// process-local adapter there is nobody to send to.
    public func serverSideEmit(_ event: String, _ arguments: [JSONValue]) {
        adapter.serverSideEmit([.string(event)] + arguments)
    }

    /// Adds a handler for `event` sent by other nodes with `serverSideEmit`. Called on no
    /// particular thread, in the order the sending node emitted.
    public func onServerSideEmit(_ event: String, _ handler: @escaping ServerSideHandler) {
        handlers.withLockedValue { $0.serverSide.append((event, handler)) }
    }

    /// Sends an event to the other nodes and returns their answers, one per node (each
    /// node's first `onServerSideEmitWithAck` handler for it), as socket.io's
    /// `serverSideEmitWithAck`. Throws `SocketIOClusterTimeout` when not every other node
    /// answers within `timeout`; with a process-local adapter, no node answers: [].
    public func serverSideEmitWithAck(_ event: String, _ arguments: [JSONValue], timeout: TimeAmount = .seconds(5)) async throws -> [[JSONValue]] {
        try await adapter.serverSideEmitWithAck([.string(event)] + arguments, timeout: timeout)
    }

    /// Adds the answering handler for `event` sent by other nodes with
    /// `serverSideEmitWithAck`.
    public func onServerSideEmitWithAck(_ event: String, _ handler: @escaping ServerSideAckHandler) {
        handlers.withLockedValue { $0.serverSideWithAck.append((event, handler)) }
    }

    func receivedServerSideEventWithAck(_ arguments: [JSONValue]) async -> [JSONValue]? {
        guard case .string(let event)? = arguments.first,
            let handler = handlers.withLockedValue({ $0.serverSideWithAck.first { $0.event == event }?.handler })
        else { return nil }
        return await handler(Array(arguments.dropFirst()))
    }

    /// Adds a handler called when this node is back in its cluster after losing it (the
    /// adapter reconnected): events sent meanwhile by other nodes may have been lost, and
    /// an application that keeps state in step with them looks again.
    public func onClusterResumed(_ handler: @escaping @Sendable () -> Void) {
        handlers.withLockedValue { $0.resumed.append(handler) }
    }

    func receivedServerSideEvent(_ arguments: [JSONValue]) {
        guard case .string(let event)? = arguments.first else { return }
        for entry in handlers.withLockedValue({ $0.serverSide }) where entry.event == event { entry.handler(Array(arguments.dropFirst())) }
    }

    func clusterResumed() {
        for handler in handlers.withLockedValue({ $0.resumed }) { handler() }
    }

    // MARK: Broadcasting

    /// A broadcast to every socket of the namespace, to narrow with `to`, `except`, `volatile`, `local`.
    public var broadcastOperator: BroadcastOperator { BroadcastOperator(namespace: self) }

    /// A broadcast to the sockets in `room` (chain `to` for several rooms).
    public func to(_ room: String) -> BroadcastOperator { broadcastOperator.to(room) }
    /// The same as `to(_:)`.
    public func `in`(_ room: String) -> BroadcastOperator { broadcastOperator.to(room) }
    /// A broadcast to every socket but those in `room`.
    public func except(_ room: String) -> BroadcastOperator { broadcastOperator.except(room) }
    /// A broadcast that skips sockets that cannot take it right now.
    public var volatile: BroadcastOperator { broadcastOperator.volatile }

    /// Emits to every socket of the namespace.
    public func emit(_ event: String, _ arguments: JSONValue...) {
        broadcastOperator.emit(event, arguments: arguments)
    }

    /// Emits to every socket of the namespace.
    public func emit(_ event: String, arguments: [JSONValue]) {
        broadcastOperator.emit(event, arguments: arguments)
    }

    /// How many sockets of this process are connected to the namespace.
    public func socketCount() async -> Int {
        await local.socketCount()
    }

    /// Runs `body` for every socket of this process connected to the namespace, each on its
    /// event loop (where its `rooms` and `data` may be read), and returns what it made.
    public func mapLocalSockets<Value: Sendable>(_ body: @escaping @Sendable (SocketIOSocket) -> Value) async -> [Value] {
        await local.map(body)
    }

    /// Sends packets to the sockets `filter` selects, through the adapter: numbered and kept
    /// for recovery unless volatile or recovery is off.
    func broadcast(
        _ packets: [SocketIOPacket], filter: BroadcastFilter, local: Bool = false, recoverable: Bool = true,
        onlyOn eventLoop: (any EventLoop)? = nil
    ) {
        if local {
            self.local.deliverLocally(packets.map(SocketIOPacketEncoder.encode), filter: filter, onlyOn: eventLoop)
            return
        }
        adapter.broadcast(packets, filter: filter, recoverable: recoverable && recovery != nil && !filter.volatile, onlyOn: eventLoop)
    }

    // MARK: Connecting

    /// Creates the socket for a CONNECT packet, restoring its session when the auth
    /// payload carries a recoverable `pid` and `offset`, and runs the middlewares.
    func connect(_ connection: SocketIOConnection, auth: JSONObject) {
        guard recovery != nil, case .string(let pid)? = auth["pid"], case .string(let offset)? = auth["offset"] else {
            admit(connection, auth: auth, restored: nil)
            return
        }
        // Restoring may be a round trip (a cluster adapter's store); the connection waits,
        // dropping what the client sends this namespace meanwhile, as during middlewares.
        connection.connectionPending(name)
        let adapter = self.adapter
        Task {
            let restored = await adapter.restoreSession(pid: pid, offset: offset)
            Counter(label: "socketio_recoveries_total", dimensions: [("result", restored == nil ? "failed" : "succeeded")]).increment()
            connection.eventLoop.execute { self.admit(connection, auth: auth, restored: restored) }
        }
    }

    /// On the connection's loop: the socket, its middlewares (unless a restored socket
    /// skips them), then `accept`.
    private func admit(_ connection: SocketIOConnection, auth: JSONObject, restored: RestoredSession?) {
        let socket = SocketIOSocket(namespace: self, connection: connection, auth: auth, restored: restored)
        if let refusal = socket.instrument?.refusal(for: socket) {
            Counter(label: "socketio_connect_errors_total").increment()
            connection.refuse(socket, refusal)
            return
        }
        let middlewares = handlers.withLockedValue { $0.middlewares }
        if middlewares.isEmpty || (restored != nil && recovery?.skipMiddlewares == true) {
            accept(socket, on: connection, restored: restored)
            return
        }
        connection.connectionPending(name)
        let eventLoop = connection.eventLoop
        Task {
            do {
                for middleware in middlewares { try await middleware(socket) }
                eventLoop.execute { self.accept(socket, on: connection, restored: restored) }
            } catch {
                Counter(label: "socketio_connect_errors_total").increment()
                let refusal = (error as? SocketIOConnectError) ?? SocketIOConnectError(String(describing: error))
                eventLoop.execute { connection.refuse(socket, refusal) }
            }
        }
    }

    /// Registers the socket, in one loop task with the end of its replay: broadcasts went
    /// on while its session was restored and its middlewares ran, so the replay takes in
    /// those too, up to now; anything numbered later reaches it live.
    private func accept(_ socket: SocketIOSocket, on connection: SocketIOConnection, restored: RestoredSession?) {
        guard let restored else { return connection.accept(socket) }
        guard let tail = adapter.packets(after: restored.through, for: restored.rooms) else {
            // Some were dropped meanwhile: the replay cannot be whole. The client reconnects
            // and, its session spent, starts afresh.
            connection.close()
            return
        }
        // The replay covers what the adapter read and what this node delivered since,
        // whichever reaches further (a cluster's log may be ahead of this node's buffer).
        connection.accept(socket, missedPackets: restored.missedPackets + tail.packets, through: max(restored.through, tail.through))
    }

    func fireConnection(_ socket: SocketIOSocket) {
        for handler in handlers.withLockedValue({ $0.connection }) { handler(socket) }
    }
}
