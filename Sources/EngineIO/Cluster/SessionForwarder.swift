import HTTPCommon
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// The engine's part in a cluster (`EngineIOConfiguration.cluster`): it carries the requests
/// and WebSockets of sessions held by other nodes to them, and serves those of its own
/// sessions that reached other nodes.
///
/// A request whose session id names another node is sent whole (head and body) to that node,
/// which answers it as if it had reached it directly (`EngineIOServer.respond`), and the
/// answer is written to the client. A WebSocket upgrade for another node's session is
/// accepted here and relayed, message by message, for as long as it lives: heartbeats,
/// acknowledgements, ordering and back-pressure stay the owner's, as with a sticky balancer.
final class SessionForwarder: Sendable {
    /// A request or WebSocket of the front node `node`, by the id that node gave it.
    struct RemoteKey: Hashable, Sendable {
        var node: String
        var id: UInt64
    }

    private struct Pending {
        var node: String
        var promise: EventLoopPromise<HTTPResponse>
        var timeout: Scheduled<Void>?
    }

    private struct Relay {
        var node: String
        var connection: WebSocketConnection
        /// The client's messages sent to the owner, numbered.
        var sent: UInt64 = 0
        /// The number of the owner's last write received.
        var received: UInt64 = 0
    }

    private struct State {
        var nextID: UInt64 = 1
        // As the front: requests sent to owners, and the WebSockets relayed for them.
        var pending: [UInt64: Pending] = [:]
        var relays: [UInt64: Relay] = [:]
        // As the owner: requests and WebSockets that other nodes hold for this one's sessions.
        var remoteRequests: [RemoteKey: EngineIOHostConnection] = [:]
        var remoteWebSockets: [RemoteKey: (socket: RemoteWebSocket, session: EngineIOSession)] = [:]
    }

    let bus: any EngineIOClusterBus
    let nodeID: String
    private let logger: Logger
    // Taken once per forwarded request, and once per message of a relayed WebSocket.
    private let state = NIOLockedValueBox(State())

    private let livenessChecks = NIOLockedValueBox<RepeatedTask?>(nil)

    /// How often the owners of this node's forwarded requests and relayed WebSockets are
    /// asked whether they still listen.
    static let livenessInterval = TimeAmount.seconds(1)

    init(bus: any EngineIOClusterBus, logger: Logger) {
        self.bus = bus
        self.nodeID = bus.nodeID
        self.logger = logger
        let task = eventLoop.scheduleRepeatedTask(initialDelay: Self.livenessInterval, delay: Self.livenessInterval) { [weak self] _ in
            self?.checkOwners()
        }
        livenessChecks.withLockedValue { $0 = task }
    }

    deinit {
        livenessChecks.withLockedValue { $0?.cancel() }
    }

    /// A client whose session's node died would otherwise learn it only from the missing
    /// heartbeat (`pingInterval` + `pingTimeout`, 45 s by default): its WebSocket relayed here
    /// stays open, and its held GET waits. So each owner with something in flight here is
    /// probed; one that no longer listens has its relayed WebSockets closed (1001: the
    /// clients reconnect, and are recovered on another node) and its requests answered as
    /// for an unknown session.
    private func checkOwners() {
        let owners = state.withLockedValue { state in
            var owners = Dictionary(uniqueKeysWithValues: Set(state.pending.values.map(\.node)).map { ($0, [UInt64]()) })
            for (id, relay) in state.relays { owners[relay.node, default: []].append(id) }
            return owners
        }
        for (node, relays) in owners {
            bus.send(ClusterEnvelope.probe(from: nodeID, relays: relays).encoded(), to: node).whenSuccess { listens in
                if !listens { self.ownerGone(node) }
            }
        }
    }

    private func ownerGone(_ node: String) {
        let (pending, relays) = state.withLockedValue { state in
            let pending = state.pending.filter { $0.value.node == node }
            let relays = state.relays.filter { $0.value.node == node }
            for id in pending.keys { state.pending[id] = nil }
            for id in relays.keys { state.relays[id] = nil }
            return (pending.values, relays.values)
        }
        for request in pending {
            request.timeout?.cancel()
            request.promise.succeed(EngineIOResponses.error(.unknownSessionID))
        }
        for relay in relays { relay.connection.close(code: .goingAway) }
        logger.info("a cluster node stopped listening", metadata: ["node": "\(node)", "requests": "\(pending.count)", "websockets": "\(relays.count)"])
    }

    /// The node that holds session `sid`, if it is another than this one. The id comes from
    /// the client: only letters and digits name a node (anything else is an unknown session
    /// here, as it would be anywhere).
    func owner(of sid: String) -> String? {
        let length = nodeID.utf8.count
        guard sid.utf8.count > length else { return nil }
        let prefix = sid.utf8.prefix(length)
        guard prefix.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5A).contains($0) || (0x61...0x7A).contains($0) }) else {
            return nil
        }
        let node = String(decoding: prefix, as: UTF8.self)
        return node == nodeID ? nil : node
    }

    /// Sends `envelope` to `node` with whatever else this node sends it in the same turn of
    /// the forwarder's loop, as one bus message: a broadcast to a hundred WebSockets that
    /// one node relays costs one `PUBLISH`, not a hundred. Messages to one node keep their
    /// order.
    func send(_ envelope: ClusterEnvelope, to node: String) {
        let schedule = outbox.withLockedValue { outbox in
            let first = outbox[node] == nil
            outbox[node, default: []].append(envelope)
            return first
        }
        guard schedule else { return }
        eventLoop.execute { self.flush(node) }
    }

    private func flush(_ node: String) {
        guard let envelopes = outbox.withLockedValue({ $0.removeValue(forKey: node) }) else { return }
        let merged = Self.mergingBroadcasts(envelopes)
        let message = merged.count == 1 ? merged[0] : .batch(merged)
        bus.send(message.encoded(), to: node).whenFailure { [logger] error in
            logger.debug("cluster message not sent", metadata: ["node": "\(node)", "error": "\(error)"])
        }
    }

    /// Consecutive writes of the same packets to several relayed WebSockets (a broadcast
    /// reaching the clients one node relays) become one `webSocketBroadcast`: the packets
    /// cross the bus, and are decoded there, once.
    static func mergingBroadcasts(_ envelopes: [ClusterEnvelope]) -> [ClusterEnvelope] {
        var merged: [ClusterEnvelope] = []
        merged.reserveCapacity(envelopes.count)
        for envelope in envelopes {
            guard case .webSocketWrite(let id, let sequence, let packets) = envelope else {
                merged.append(envelope)
                continue
            }
            let target = ClusterEnvelope.RelayTarget(id: id, sequence: sequence)
            switch merged.last {
            case .webSocketWrite(let lastID, let lastSequence, let lastPackets)? where lastPackets == packets:
                merged[merged.count - 1] = .webSocketBroadcast(
                    targets: [.init(id: lastID, sequence: lastSequence), target], packets: packets
                )
            case .webSocketBroadcast(var targets, let lastPackets)? where lastPackets == packets:
                merged.removeLast()  // so that `targets` is the only reference, appended in place
                targets.append(target)
                merged.append(.webSocketBroadcast(targets: targets, packets: packets))
            default:
                merged.append(envelope)
            }
        }
        return merged
    }

    /// What `send` holds for each node until its loop's turn ends.
    private let outbox = NIOLockedValueBox<[String: [ClusterEnvelope]]>([:])

    // MARK: As the front

    /// Sends a request to the node `node` that holds its session. The answer is the owner's,
    /// or, if no node `node` listens, the reference's "Session ID unknown"; if it does not
    /// come within `timeout`, a 504.
    func forward(
        _ head: HTTPRequestHead, body: ByteBuffer, to node: String, on eventLoop: any EventLoop, timeout: TimeAmount
    ) -> (id: UInt64, response: EventLoopFuture<HTTPResponse>) {
        let promise = eventLoop.makePromise(of: HTTPResponse.self)
        let id = state.withLockedValue { state in
            defer { state.nextID += 1 }
            state.pending[state.nextID] = Pending(node: node, promise: promise)
            return state.nextID
        }
        let timer = eventLoop.scheduleTask(in: timeout) {
            // The owner answers a held GET within its ping interval: one that has not is
            // unreachable or stalled. It hears that the request is gone, so that a session
            // still waiting on it ends (the client, answered 504, reconnects and recovers).
            self.answer(id, with: HTTPResponse(status: .gatewayTimeout))
            self.send(.requestGone(from: self.nodeID, id: id), to: node)
        }
        state.withLockedValue { $0.pending[id]?.timeout = timer }
        bus.send(ClusterEnvelope.request(from: nodeID, id: id, head: head, body: body).encoded(), to: node).whenComplete { result in
            if case .success(true) = result { return }
            self.answer(id, with: EngineIOResponses.error(.unknownSessionID))
        }
        return (id, promise.futureResult)
    }

    /// The client of forwarded request `id` went away: its owner hears of it (a held GET's
    /// session then sees its poll's connection closed).
    func requestGone(_ id: UInt64, node: String) {
        guard let pending = state.withLockedValue({ $0.pending.removeValue(forKey: id) }) else { return }
        pending.timeout?.cancel()
        pending.promise.succeed(HTTPResponse(status: .badRequest))
        send(.requestGone(from: nodeID, id: id), to: node)
    }

    private func answer(_ id: UInt64, with response: HTTPResponse) {
        guard let pending = state.withLockedValue({ $0.pending.removeValue(forKey: id) }) else { return }
        pending.timeout?.cancel()
        pending.promise.succeed(response)
    }

    /// Starts relaying `connection`, a WebSocket for a session of `node`, and returns its id.
    func openRelay(_ connection: WebSocketConnection, head: HTTPRequestHead, to node: String) -> UInt64 {
        let id = state.withLockedValue { state in
            defer { state.nextID += 1 }
            state.relays[state.nextID] = Relay(node: node, connection: connection)
            return state.nextID
        }
        bus.send(ClusterEnvelope.webSocketOpened(from: nodeID, id: id, head: head).encoded(), to: node).whenComplete { result in
            if case .success(true) = result { return }
            // No such node: as for an unknown session on this one.
            self.state.withLockedValue { $0.relays.removeValue(forKey: id) }?.connection.close(code: .policyViolation)
        }
        return id
    }

    func relayReceived(_ id: UInt64, node: String, binary: Bool, data: ByteBuffer) {
        let sequence = state.withLockedValue { state -> UInt64? in
            state.relays[id]?.sent += 1
            return state.relays[id]?.sent
        }
        guard let sequence else { return }
        send(.webSocketReceived(from: nodeID, id: id, sequence: sequence, binary: binary, data: data), to: node)
    }

    /// The relayed WebSocket's backlog crossed its bound, or went back under it: its owner
    /// hears of it, so that its producers wait for this client as for one of its own.
    func relayWritabilityChanged(_ id: UInt64, node: String, writable: Bool) {
        guard state.withLockedValue({ $0.relays[id] != nil }) else { return }
        send(.webSocketWritability(from: nodeID, id: id, writable: writable), to: node)
    }

    func relayClosed(_ id: UInt64, node: String, error: Bool) {
        guard state.withLockedValue({ $0.relays.removeValue(forKey: id) }) != nil else { return }
        send(.webSocketClosed(from: nodeID, id: id, error: error), to: node)
    }

    // MARK: Messages for the front

    func received(response id: UInt64, status: UInt16, headers: HTTPHeaders, body: ByteBuffer) {
        answer(id, with: HTTPResponse(status: .init(statusCode: Int(status)), headers: headers, body: body))
    }

    func received(write packets: [EngineIOOutboundPacket], to targets: [ClusterEnvelope.RelayTarget]) {
        var writes: [WebSocketConnection] = []
        var gaps: [(id: UInt64, relay: Relay)] = []
        state.withLockedValue { state in
            for target in targets {
                guard var relay = state.relays[target.id] else { continue }
                guard target.sequence == relay.received + 1 else {
                    state.relays[target.id] = nil
                    gaps.append((target.id, relay))
                    continue
                }
                relay.received = target.sequence
                state.relays[target.id] = relay
                writes.append(relay.connection)
            }
        }
        for connection in writes { connection.write(packets) }
        for (id, relay) in gaps {
            // The bus lost a write: the client must not go on as if it had it. Closed, it
            // reconnects and is recovered with what it missed; its session ends on the owner.
            logger.info("a relayed WebSocket lost a message on the bus; closing it", metadata: ["relay": "\(id)"])
            relay.connection.close(code: .unexpectedServerError)
            send(.webSocketClosed(from: nodeID, id: id, error: true), to: relay.node)
        }
    }

    /// Closes every relayed WebSocket with 1001 (this node is going away), telling each
    /// owner; the futures complete when the close frames are written.
    func closeAllRelays() -> [EventLoopFuture<Void>] {
        let relays = state.withLockedValue { state in
            defer { state.relays = [:] }
            return state.relays
        }
        return relays.map { id, relay in
            send(.webSocketClosed(from: nodeID, id: id, error: false), to: relay.node)
            return relay.connection.close(code: .goingAway)
        }
    }

    /// The relays of `node` that it no longer knows (their close was lost): closed.
    func closeUnknownRelays(_ ids: [UInt64], of node: String) {
        for id in ids {
            send(.webSocketClose(id: id, code: 1011), to: node)
        }
    }

    func received(close code: UInt16, relay id: UInt64) {
        guard let connection = state.withLockedValue({ $0.relays.removeValue(forKey: id) })?.connection else { return }
        var data = ByteBuffer()
        data.writeInteger(code)
        connection.close(code: data.readWebSocketErrorCode() ?? .normalClosure)
    }

    // MARK: As the owner

    func addRemoteRequest(_ key: RemoteKey, connection: EngineIOHostConnection) {
        state.withLockedValue { $0.remoteRequests[key] = connection }
    }

    func removeRemoteRequest(_ key: RemoteKey) {
        state.withLockedValue { _ = $0.remoteRequests.removeValue(forKey: key) }
    }

    func remoteRequestGone(_ key: RemoteKey) {
        state.withLockedValue { $0.remoteRequests.removeValue(forKey: key) }?.markClosed()
    }

    func addRemoteWebSocket(_ socket: RemoteWebSocket, session: EngineIOSession) {
        state.withLockedValue { $0.remoteWebSockets[socket.key] = (socket, session) }
    }

    func remoteWebSocket(_ key: RemoteKey) -> (socket: RemoteWebSocket, session: EngineIOSession)? {
        state.withLockedValue { $0.remoteWebSockets[key] }
    }

    func forgetRemoteWebSocket(_ key: RemoteKey) -> (socket: RemoteWebSocket, session: EngineIOSession)? {
        state.withLockedValue { $0.remoteWebSockets.removeValue(forKey: key) }
    }

    /// An event loop for the owner's side of forwarded requests.
    let eventLoop: any EventLoop = MultiThreadedEventLoopGroup.singleton.any()
}
