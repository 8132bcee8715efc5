import NIOConcurrencyHelpers
import NIOCore
import SocketIO

/// One namespace's adapter on a cluster of nodes sharing a `ClusterBus` (`RedisCluster`).
///
/// **Order.** A recoverable broadcast is numbered, logged and published by the bus (Redis:
/// one Lua script, and Redis runs scripts one at a time), so the numbers are consecutive
/// and every subscriber receives the messages in number order. Every node, the sender included, delivers to its
/// sockets from the subscription, through a `SequenceGate` that fills any hole from the
/// log; so all nodes deliver one sequence, and a room joined at an offset means the same
/// on every node. Offsets are those numbers: a client's offset names the same point on
/// any node.
///
/// **Recovery.** A connected socket's session is written to the bus when it connects and
/// whenever its rooms or data change, with an expiry refreshed while it stays connected;
/// so a node that dies without a word leaves its sockets' sessions behind (the hole in the
/// Redis Streams adapter, which writes them only at disconnect). Missed packets come from
/// this node's recovery buffer when it reaches back far enough, else from the log, read in
/// pages. The log is bounded in length (`maxBufferedPackets`, trimmed approximately) and
/// entries older than `maxDisconnectionDuration` are not replayed.
///
/// **The bus away.** A broadcast that cannot be published is still delivered to this node's
/// sockets, without an offset (it cannot be recovered); nodes keep serving their sockets
/// and catch up on the log when the bus is back. Sessions are written again on reconnect. A
/// command that timed out may have run all the same: each broadcast carries its origin (the
/// node and a serial number), so one delivered here for want of an answer is not delivered
/// again when the bus publishes it after all.
///
/// Every message between the adapters is an `AdapterMessage`.
final class ClusterAdapter: SocketIOAdapter, ClusterBusSubscriber {
    let namespace: String
    private let bus: any ClusterBus
    private let host: any SocketIOAdapterHost
    private let recovery: ConnectionStateRecovery?
    private let group: any EventLoopGroup

    private struct State {
        var gate = SequenceGate<ClusterMessage>()
        var buffer: RecoveryBuffer?
        /// The sessions of this node's connected sockets, by pid, as last written.
        var connected: [String: String] = [:]
        var refresh: RepeatedTask?
        /// The serial number of this node's next broadcast.
        var nextSerial: UInt64 = 1
        /// This node's broadcasts sent to the bus and neither answered nor seen on the
        /// subscription yet.
        var unconfirmed: Set<UInt64> = []
        /// Those of them delivered here when the bus did not answer, with when to forget them
        /// (by then the bus has run the command or never will): seen on the subscription after
        /// all, they are not delivered again.
        var deliveredUnanswered: Set<UInt64> = []
        var forgetDeliveredUnanswered = CircularBuffer<(serial: UInt64, at: NIODeadline)>()

        /// Whether this node's own broadcast `serial`, come back from the bus, is still to be
        /// delivered here.
        mutating func ownBroadcastArrived(_ serial: UInt64) -> Bool {
            unconfirmed.remove(serial)
            return deliveredUnanswered.remove(serial) == nil
        }

        /// The broadcasts `serials` got no answer from the bus: returns those to deliver here
        /// now (not seen on the subscription meanwhile).
        mutating func unanswered(_ serials: Range<UInt64>, now: NIODeadline) -> [Int] {
            while let first = forgetDeliveredUnanswered.first, first.at <= now {
                deliveredUnanswered.remove(forgetDeliveredUnanswered.removeFirst().serial)
            }
            var deliver: [Int] = []
            for (index, serial) in serials.enumerated() where unconfirmed.remove(serial) != nil {
                deliveredUnanswered.insert(serial)
                forgetDeliveredUnanswered.append((serial, now + ClusterAdapter.unansweredMemory))
                deliver.append(index)
            }
            return deliver
        }
    }

    /// How long a broadcast delivered without the bus's answer is remembered: far longer than
    /// a command can wait in the bus or on the wire before it runs.
    static let unansweredMemory = TimeAmount.seconds(60)

    /// Gate, buffer and local delivery change together under this lock, so that every
    /// event loop is handed the namespace's packets in number order.
    private let state: NIOLockedValueBox<State>

    /// How often connected sessions are written again, and how long each write lasts.
    private var refreshInterval: TimeAmount {
        min(.seconds(30), .nanoseconds((recovery?.maxDisconnectionDuration.nanoseconds ?? 0) / 2))
    }

    init(bus: any ClusterBus, host: any SocketIOAdapterHost, recovery: ConnectionStateRecovery?, group: any EventLoopGroup) {
        self.bus = bus
        self.host = host
        self.recovery = recovery
        self.group = group
        self.namespace = host.namespace
        var state = State()
        state.buffer = recovery.map { RecoveryBuffer(maxAge: $0.maxDisconnectionDuration, maxCount: $0.maxBufferedPackets, maxBytes: $0.maxBufferedBytes) }
        self.state = NIOLockedValueBox(state)
    }

    // MARK: Broadcasting

    func broadcast(_ packets: [SocketIOPacket], filter: BroadcastFilter, recoverable: Bool, onlyOn eventLoop: (any EventLoop)?) {
        guard !packets.isEmpty else { return }
        let numbered = recoverable && recovery != nil
        let serials = state.withLockedValue { state in
            let first = state.nextSerial
            state.nextSerial += UInt64(packets.count)
            state.unconfirmed.formUnion(first..<state.nextSerial)
            return first..<state.nextSerial
        }
        let node = bus.nodeID
        let messages = zip(packets, serials).map { packet, serial in
            ClusterMessage(packet: packet, filter: filter, numbered: numbered, origin: .init(node: node, serial: serial))
        }
        let sent: EventLoopFuture<Void>
        if numbered {
            sent = bus.publishNumbered(messages.map { AdapterMessage.broadcast($0).bytes }, namespace: namespace, logLength: recovery!.maxBufferedPackets)
        } else {
            // The bus keeps one node's messages in order, numbered or not.
            var last = group.any().makeSucceededVoidFuture()
            for message in messages { last = bus.publish(AdapterMessage.broadcast(message).bytes, namespace: namespace) }
            sent = last
        }
        let host = self.host
        sent.whenComplete { [state] result in
            state.withLockedValue { state in
                guard case .failure = result else {
                    state.unconfirmed.subtract(serials)
                    return
                }
                // The bus is away, or slow: this node's sockets still get the packets that
                // the subscription has not brought meanwhile, unnumbered.
                let unanswered = state.unanswered(serials, now: .now())
                guard !unanswered.isEmpty else { return }
                host.deliverLocally(unanswered.map { messages[$0].packet(offset: nil) }, filter: filter, onlyOn: eventLoop)
            }
        }
    }

    // MARK: Requests to the other nodes

    /// A request waiting for the other nodes' answers.
    private struct PendingRequest {
        let expected: Int
        var answers: [JSONValue] = []
        let promise: EventLoopPromise<[JSONValue]>
    }

    private let pendingRequests = NIOLockedValueBox<[String: PendingRequest]>([:])

    /// Publishes `request` to the other nodes and waits for each live one's answer (see
    /// `ClusterBus.nodeCount`), at most `timeout`.
    private func ask(_ request: JSONValue, timeout: TimeAmount) async throws -> [JSONValue] {
        // Counted now, not at the last heartbeat: a node that joined since must answer too.
        let expected = ((try? await bus.countNodes().get()) ?? bus.nodeCount) - 1
        guard expected > 0 else { return [] }
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        let promise = group.any().makePromise(of: [JSONValue].self)
        pendingRequests.withLockedValue { $0[id] = PendingRequest(expected: expected, promise: promise) }
        let timer = group.any().scheduleTask(in: timeout) { [pendingRequests] in
            guard let pending = pendingRequests.withLockedValue({ $0.removeValue(forKey: id) }) else { return }
            pending.promise.fail(SocketIOClusterTimeout(received: pending.answers.count, expected: pending.expected))
        }
        promise.futureResult.whenComplete { _ in timer.cancel() }
        send(.request(from: bus.nodeID, id: id, request)).whenFailure { [pendingRequests] error in
            pendingRequests.withLockedValue { $0.removeValue(forKey: id) }?.promise.fail(error)
        }
        return try await promise.futureResult.get()
    }

    /// Another node's request: performed here, answered on the channel.
    private func answer(_ request: JSONObject, id: String, to node: String) {
        let host = self.host
        Task {
            var reply: JSONObject = [:]
            switch request["op"]?.stringValue {
            case "ack":
                // A broadcast with acks: each answer as it comes, and the count at once.
                let packet = SocketIOPacket(type: .event, namespace: host.namespace, data: .array(request["data"]?.arrayValue ?? []))
                let respond: @Sendable (JSONValue) -> Void = { reply in
                    _ = self.send(.response(to: node, id: id, reply))
                }
                let count = await host.sendWithAck(packet, filter: Self.filter(request)) { respond(["ack": .array($0)]) }
                respond(["count": .number(Double(count))])
                return
            case "event":
                reply["args"] = .array(await host.receivedServerSideEventWithAck(request["args"]?.arrayValue ?? []) ?? [])
            case let op?:
                guard let operation = Self.operation(op, request) else { return }
                let described = await host.perform(operation, on: Self.filter(request))
                if operation == .fetch { reply["sockets"] = .array(described.map(Self.json(of:))) }
            case nil:
                return
            }
            _ = self.send(.response(to: node, id: id, .object(reply)))
        }
    }

    private func send(_ message: AdapterMessage) -> EventLoopFuture<Void> {
        bus.publish(message.bytes, namespace: namespace)
    }

    /// Broadcasts with acks waiting for the other nodes' counts and their clients' answers.
    private let ackCollectors = NIOLockedValueBox<[String: BroadcastAckCollector]>([:])

    func broadcastWithAck(_ packet: SocketIOPacket, filter: BroadcastFilter, timeout: TimeAmount) async -> BroadcastAcks {
        let others = ((try? await bus.countNodes().get()) ?? bus.nodeCount) - 1
        let collector = BroadcastAckCollector(reports: others + 1, timeout: timeout)
        let id = String(UInt64.random(in: 0...UInt64.max), radix: 16)
        if others > 0 {
            ackCollectors.withLockedValue { $0[id] = collector }
            let request: JSONValue = [
                "op": "ack", "data": packet.data ?? [], "rooms": .array(filter.rooms.sorted().map(JSONValue.string)),
                "except": .array(filter.except.sorted().map(JSONValue.string)),
            ]
            _ = send(.request(from: bus.nodeID, id: id, request))
        }
        collector.report(count: await host.sendWithAck(packet, filter: filter) { collector.add($0) })
        let result = await collector.result
        ackCollectors.withLockedValue { _ = $0.removeValue(forKey: id) }
        return result
    }

    private func answered(id: String, _ reply: JSONValue) {
        if let collector = ackCollectors.withLockedValue({ $0[id] }) {
            if let count = reply["count"]?.intValue { collector.report(count: count) }
            if let answer = reply["ack"]?.arrayValue { collector.add(answer) }
            return
        }
        let done = pendingRequests.withLockedValue { pending -> PendingRequest? in
            guard var request = pending[id] else { return nil }
            request.answers.append(reply)
            guard request.answers.count >= request.expected else {
                pending[id] = request
                return nil
            }
            pending[id] = nil
            return request
        }
        done?.promise.succeed(done!.answers)
    }

    func serverSideEmitWithAck(_ arguments: [JSONValue], timeout: TimeAmount) async throws -> [[JSONValue]] {
        try await ask(["op": "event", "args": .array(arguments)], timeout: timeout).map { $0["args"]?.arrayValue ?? [] }
    }

    func perform(_ operation: SocketOperation, on filter: BroadcastFilter, timeout: TimeAmount) async throws -> [SocketDescription] {
        var request: JSONObject = ["rooms": .array(filter.rooms.sorted().map(JSONValue.string)), "except": .array(filter.except.sorted().map(JSONValue.string))]
        switch operation {
        case .fetch: request["op"] = "fetch"
        case .join(let rooms): (request["op"], request["names"]) = ("join", .array(rooms.map(JSONValue.string)))
        case .leave(let rooms): (request["op"], request["names"]) = ("leave", .array(rooms.map(JSONValue.string)))
        case .disconnect(let close): (request["op"], request["close"]) = ("disconnect", .bool(close))
        }
        let local = await host.perform(operation, on: filter)
        let remote = try await ask(.object(request), timeout: timeout)
        return local + remote.flatMap { ($0["sockets"]?.arrayValue ?? []).compactMap(Self.description(from:)) }
    }

    static func operation(_ name: String, _ request: JSONObject) -> SocketOperation? {
        let names = (request["names"]?.arrayValue ?? []).compactMap(\.stringValue)
        switch name {
        case "fetch": return .fetch
        case "join": return .join(names)
        case "leave": return .leave(names)
        case "disconnect": return .disconnect(close: request["close"] == .bool(true))
        default: return nil
        }
    }

    static func filter(_ request: JSONObject) -> BroadcastFilter {
        BroadcastFilter(
            rooms: Set((request["rooms"]?.arrayValue ?? []).compactMap(\.stringValue)),
            except: Set((request["except"]?.arrayValue ?? []).compactMap(\.stringValue))
        )
    }

    static func json(of socket: SocketDescription) -> JSONValue {
        ["id": .string(socket.id), "rooms": .array(socket.rooms.sorted().map(JSONValue.string)), "data": socket.data, "auth": .object(socket.auth)]
    }

    static func description(from value: JSONValue) -> SocketDescription? {
        guard let id = value["id"]?.stringValue else { return nil }
        return SocketDescription(
            id: id, rooms: Set((value["rooms"]?.arrayValue ?? []).compactMap(\.stringValue)), data: value["data"] ?? .null,
            auth: value["auth"]?.objectValue ?? [:]
        )
    }

    func serverSideEmit(_ arguments: [JSONValue]) {
        _ = send(.serverSideEvent(from: bus.nodeID, arguments: arguments))
    }

    /// A message from the bus: see `AdapterMessage`. The bus hands this node's own messages
    /// back too; only broadcasts are for it.
    func received(_ bytes: ByteBuffer, number: UInt64?) {
        switch AdapterMessage(bytes) {
        case .broadcast(let message)?:
            let actions = state.withLockedValue { state in
                perform(state.gate.received(message, sequence: number), in: &state)
            }
            fetch(actions)
        case .request(let node, let id, let body)?:
            if node != bus.nodeID, let request = body.objectValue { answer(request, id: id, to: node) }
        case .response(let node, let id, let body)?:
            if node == bus.nodeID { answered(id: id, body) }
        case .serverSideEvent(let node, let arguments)?:
            if node != bus.nodeID { host.receivedServerSideEvent(arguments) }
        case .takeover(let node, let pid, let socket)?:
            guard node != bus.nodeID else { return }
            // Written no more from here: the session is the recovering node's now.
            state.withLockedValue { _ = $0.connected.removeValue(forKey: pid) }
            host.supersedeLocalSockets(id: socket)
        case nil:
            return  // not ours: the bus is shared
        }
    }

    /// Delivers what the gate let through; returns the fetches it asked for.
    private func perform(_ actions: [SequenceGate<ClusterMessage>.Action], in state: inout State) -> [ClosedRange<UInt64>] {
        var fetches: [ClosedRange<UInt64>] = []
        let now = NIODeadline.now()
        for action in actions {
            switch action {
            case .deliver(let messages):
                var packets: [EncodedSocketIOPacket] = []
                var filter: BroadcastFilter?
                // Consecutive packets for the same sockets go out in one hop per loop.
                func flush() {
                    if let filter, !packets.isEmpty { host.deliverLocally(packets, filter: filter, onlyOn: nil) }
                    packets = []
                }
                for (sequence, message) in messages {
                    let packet = message.packet(offset: sequence)
                    let messageFilter = message.filter
                    if let sequence {
                        state.buffer?.appendNumbered(sequence: sequence, packet: packet, filter: messageFilter, now: now)
                    }
                    if message.origin.node == bus.nodeID, !state.ownBroadcastArrived(message.origin.serial) {
                        // Delivered here already, unnumbered, when the bus did not answer (see
                        // `broadcast`): kept for recovery (a socket that was away then gets
                        // it), not sent twice to the sockets that got it.
                        continue
                    }
                    if filter != messageFilter { flush() }
                    filter = messageFilter
                    packets.append(packet)
                }
                flush()
            case .fetch(let range):
                fetches.append(range)
            }
        }
        return fetches
    }

    /// Reads the missing numbers from the log and hands them to the gate. A read that fails
    /// (the bus away for a moment) is tried again, 200 ms then doubling, four times, before the
    /// hole is given up on; delivery waits meanwhile, so nothing after it overtakes it.
    private func fetch(_ ranges: [ClosedRange<UInt64>], attempt: Int = 1) {
        for range in ranges {
            readLog(from: range.lowerBound, through: range.upperBound, into: []).whenComplete { result in
                if case .failure = result, attempt < 5 {
                    self.group.any().scheduleTask(in: .milliseconds(100 << attempt)) { self.fetch([range], attempt: attempt + 1) }
                    return
                }
                let actions = self.state.withLockedValue { state in
                    switch result {
                    case .success(let entries):
                        return self.perform(state.gate.fetched(entries.map { ($0.sequence, $0.message) }), in: &state)
                    case .failure:
                        return self.perform(state.gate.fetchFailed(), in: &state)
                    }
                }
                self.fetch(actions)
            }
        }
    }

    /// After (re)subscribing: anything published while this node was not listening is read
    /// from the log.
    func resynchronize() {
        bus.latestNumber(namespace: namespace).whenSuccess { latest in
            guard let latest else { return }
            let fetches = self.state.withLockedValue { state in self.perform(state.gate.latest(latest), in: &state) }
            self.fetch(fetches)
        }
        writeConnectedSessions()
        host.clusterResumed()
    }

    struct LogEntry {
        let sequence: UInt64
        let time: Int64
        let message: ClusterMessage
    }

    /// Log entries numbered `start` through `last`, in pages; entries that are not
    /// broadcasts are skipped.
    private func readLog(from start: UInt64, through last: UInt64, into entries: [LogEntry]) -> EventLoopFuture<[LogEntry]> {
        let page = 1000
        return bus.readLog(namespace: namespace, from: start, through: last, limit: page).flatMap { read in
            let all = entries + read.compactMap { entry -> LogEntry? in
                guard case .broadcast(let message)? = AdapterMessage(entry.message) else { return nil }
                return LogEntry(sequence: entry.number, time: entry.milliseconds, message: message)
            }
            guard read.count == page, let end = read.last?.number, end < last else {
                return self.group.any().makeSucceededFuture(all)
            }
            return self.readLog(from: end + 1, through: last, into: all)
        }
    }

    // MARK: Sessions

    func sessionUpdated(_ session: PersistedSessionInfo) {
        guard recovery != nil else { return }
        let text = SessionRecord.text(session)
        state.withLockedValue { $0.connected[session.pid] = text }
        write(session.pid, text, lasting: refreshInterval * 3)
    }

    func sessionEnded(pid: String) {
        guard recovery != nil else { return }
        state.withLockedValue { _ = $0.connected.removeValue(forKey: pid) }
        bus.deleteSession(pid: pid, namespace: namespace)
    }

    func persistSession(_ session: PersistedSessionInfo) {
        guard let recovery else { return }
        state.withLockedValue { _ = $0.connected.removeValue(forKey: session.pid) }
        write(session.pid, SessionRecord.text(session), lasting: recovery.maxDisconnectionDuration)
    }

    private func write(_ pid: String, _ text: String, lasting: TimeAmount) {
        bus.storeSession(text, pid: pid, namespace: namespace, lasting: lasting)
    }

    /// Writes every connected session again: they outlive this node by at most a few
    /// refresh intervals, and come back after the bus lost them.
    private func writeConnectedSessions() {
        guard recovery != nil else { return }
        let sessions = state.withLockedValue { $0.connected }
        for (pid, text) in sessions { write(pid, text, lasting: refreshInterval * 3) }
    }

    func startRefreshing() {
        guard recovery != nil else { return }
        let interval = refreshInterval
        let task = group.any().scheduleRepeatedTask(initialDelay: interval, delay: interval) { [weak self] _ in
            self?.writeConnectedSessions()
        }
        state.withLockedValue { $0.refresh = task }
    }

    func stop() {
        state.withLockedValue { $0.refresh?.cancel() }
    }

    func restoreSession(pid: String, offset: String) async -> RestoredSession? {
        guard let recovery, let sequence = UInt64(offset) else { return nil }
        // Taken: a session is restored once at most, whichever node asks.
        guard let text = try? await bus.takeSession(pid: pid, namespace: namespace).get(), let session = SessionRecord.session(text),
            session.pid == pid
        else { return nil }
        // The session may still be held by a socket on another node whose link is
        // half-open (or by one on a node that died): the newest connection wins there too.
        _ = send(.takeover(from: bus.nodeID, pid: pid, socket: session.id))
        if let local = state.withLockedValue({ $0.buffer?.packets(after: offset, for: session.rooms, now: .now()) }) {
            return RestoredSession(id: session.id, pid: pid, rooms: session.rooms, data: session.data, missedPackets: local.packets, through: local.through)
        }
        // This node does not reach back that far (it started later): the log does.
        guard let entries = try? await readLog(from: sequence, through: UInt64.max >> 1, into: []).get(),
            let first = entries.first, first.sequence == sequence,
            first.time + recovery.maxDisconnectionDuration.nanoseconds / 1_000_000 >= clusterMilliseconds()
        else { return nil }
        let missed = entries.dropFirst().filter { $0.message.filter.includes(session.rooms, at: $0.sequence) }
        return RestoredSession(
            id: session.id, pid: pid, rooms: session.rooms, data: session.data,
            missedPackets: missed.map { $0.message.packet(offset: $0.sequence) }, through: entries.last!.sequence
        )
    }

    func packets(after offset: UInt64, for memberships: RoomMemberships) -> (packets: [EncodedSocketIOPacket], through: UInt64)? {
        state.withLockedValue { $0.buffer?.packets(following: offset, for: memberships) }
    }
}
