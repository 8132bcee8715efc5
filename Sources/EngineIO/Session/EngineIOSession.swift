import NIOCore
import NIOWebSocket

/// One Engine.IO session: a client that completed the handshake, over whichever transport
/// carries it now.
///
/// The session lives on one event loop. It feeds transport events to its
/// `SessionStateMachine` and performs the actions it returns: writes, poll answers, timers.
/// Public methods may be called from any thread; they hop onto `eventLoop`.
public final class EngineIOSession: @unchecked Sendable {
    // @unchecked Sendable: `id`, `eventLoop`, `handshake` and `server` are immutable.
    // Every other stored property is read and written only on `eventLoop`: the
    // public entry points hop there first, the internal ones are called there by the
    // channel handlers (each asserts it with `eventLoop.assertInEventLoop()`), and the timer
    // callbacks are scheduled on it.

    /// The session id: a secret shared with the client only (whoever knows it can poll as
    /// the client), so logs show `logLabel(_:)` instead.
    public let id: String

    /// What logs show of a session id: its first six characters (36 of its 144 bits), enough
    /// to tell sessions apart in a log, too few to take one over.
    static func logLabel(_ id: String) -> String { "\(id.prefix(6))…" }
    /// The event loop the session lives on: its callbacks run there.
    public let eventLoop: any EventLoop
    /// The request that opened the session.
    public let handshake: EngineIOHandshake

    private let server: EngineIOServer
    /// The server's settings, read through it: a copy in every session would cost each idle
    /// connection a few hundred bytes.
    private var configuration: EngineIOConfiguration { server.configuration }

    private var machine: SessionStateMachine
    private var handler: (any EngineIOSessionHandler)?
    private var pendingPoll: PollResponder?
    private var webSocket: (any SessionWebSocket)?
    private var upgradeCandidate: (any SessionWebSocket)?
    private var pingTimer: Scheduled<Void>?
    private var pingTimeoutTimer: Scheduled<Void>?
    private var upgradeTimer: Scheduled<Void>?
    private var upgradeCheckTask: RepeatedTask?
    private var closeTimer: Scheduled<Void>?
    /// Producers waiting for the transport to have room; see `whenWritable()`.
    private var writableWaiters: [EventLoopPromise<Void>] = []

    init(
        id: String,
        eventLoop: any EventLoop,
        handshake: EngineIOHandshake,
        server: EngineIOServer
    ) {
        self.id = id
        self.eventLoop = eventLoop
        self.handshake = handshake
        self.server = server
        self.machine = SessionStateMachine(
            transport: handshake.transport, maxQueuedPackets: server.configuration.maxPollingQueue,
            maxPacketsPerPoll: server.configuration.maxPacketsPerPoll)
    }

    // MARK: Public API

    /// The transport carrying the session, nil once closed. Read it on `eventLoop`.
    public var transport: EngineIOTransportKind? {
        eventLoop.assertInEventLoop()
        return machine.transport
    }

    /// Sends a message. Dropped silently once the session is closing, as in the reference.
    public func send(_ message: EngineIOMessage) {
        send(.message(message))
    }

    /// Sends a packet encoded once with `EngineIOOutboundPacket.message(_:)`: the way to
    /// write one broadcast to many sessions without encoding it per recipient.
    public func send(_ packet: EngineIOOutboundPacket) {
        if eventLoop.inEventLoop {
            perform(machine.send(packet))
        } else {
            eventLoop.execute { self.perform(self.machine.send(packet)) }
        }
    }

    /// Sends `packet` only if the transport can take it at once: a polling GET is waiting,
    /// or the WebSocket has no backlog. Returns whether it was sent. Call on `eventLoop`.
    /// This is Socket.IO's `volatile`.
    @discardableResult
    public func sendIfWritable(_ packet: EngineIOOutboundPacket) -> Bool {
        eventLoop.assertInEventLoop()
        switch machine.transport {
        case .websocket?:
            guard webSocket?.isWritable == true else { return false }
        case .polling?:
            guard pendingPoll != nil else { return false }
        case nil:
            return false
        }
        perform(machine.send(packet))
        return true
    }

    /// Completes when the transport has room for more: the WebSocket is back under
    /// `maxOutboundBytes`, or a polling client has fetched everything queued for it. Fails
    /// with `EngineIOSessionClosedError` if the session ends first.
    ///
    /// A producer of a long stream, such as a history replay, waits on it between pieces, so
    /// that one client reading slowly cannot make the server buffer without bound. A polling
    /// client takes one piece per GET: what one response carries, and what its client must
    /// read before it can poll again or complete an upgrade, stays one piece long.
    public func whenWritable() -> EventLoopFuture<Void> {
        guard eventLoop.inEventLoop else { return eventLoop.flatSubmit { self.whenWritable() } }
        if machine.isClosed { return eventLoop.makeFailedFuture(EngineIOSessionClosedError()) }
        if hasRoom { return eventLoop.makeSucceededVoidFuture() }
        let promise = eventLoop.makePromise(of: Void.self)
        writableWaiters.append(promise)
        return promise.futureResult
    }

    private var hasRoom: Bool {
        switch machine.transport {
        case .websocket?: return webSocket?.isWritable ?? true
        case .polling?: return machine.writeBuffer.isEmpty
        case nil: return true
        }
    }

    /// Lets the producers waiting in `whenWritable()` go on, if there is room now.
    private func resumeWritableWaiters() {
        guard !writableWaiters.isEmpty, hasRoom else { return }
        let waiters = writableWaiters
        writableWaiters = []
        for waiter in waiters { waiter.succeed() }
    }

    /// The WebSocket's writability changed. Called on the session's loop.
    func webSocketWritabilityChanged() {
        eventLoop.assertInEventLoop()
        resumeWritableWaiters()
    }

    /// Closes the session from the server side ("forced close"). A polling client receives
    /// what was queued, then `1`.
    public func close() {
        close(reason: .forcedClose)
    }

    func close(reason: EngineIOCloseReason) {
        guard eventLoop.inEventLoop else {
            eventLoop.execute { self.close(reason: reason) }
            return
        }
        switch machine.closeRequested(reason: reason) {
        case .none:
            break
        case .close(let action):
            perform(action)
        case .awaitPoll(let closeCandidate):
            cancelHeartbeat()
            if closeCandidate { endUpgradeCandidate(closing: true) }
            closeTimer = eventLoop.scheduleTask(in: configuration.closeTimeout) {
                if let action = self.machine.closeTimeoutElapsed() { self.perform(action) }
            }
        }
    }

    /// Ends the session at once with `reason`, without waiting for a polling GET. The future
    /// completes once what the close sends the client is written.
    @discardableResult
    func closeNow(reason: EngineIOCloseReason) -> EventLoopFuture<Void> {
        guard eventLoop.inEventLoop else {
            return eventLoop.flatSubmit { self.closeNow(reason: reason) }
        }
        guard let action = machine.closeNow(reason: reason) else { return eventLoop.makeSucceededVoidFuture() }
        return perform(action)
    }

    // MARK: Opening

    /// Queues the open packet, hands the session to the delegate, starts the heartbeat.
    func open(upgrades: [EngineIOTransportKind], webSocket: WebSocketConnection?) {
        eventLoop.assertInEventLoop()
        self.webSocket = webSocket
        let upgradeList = upgrades.map { #""\#($0.rawValue)""# }.joined(separator: ",")
        let openJSON =
            #"{"sid":"\#(id)","upgrades":[\#(upgradeList)],"pingInterval":\#(configuration.pingInterval.milliseconds),"#
            + #""pingTimeout":\#(configuration.pingTimeout.milliseconds),"maxPayload":\#(configuration.maxHttpBufferSize)}"#
        perform(machine.send(.control(.open, openJSON)))
        handler = server.delegate.server(server, didOpen: self)
        schedulePing()
    }

    // MARK: Polling

    func pollReceived(_ responder: PollResponder) {
        eventLoop.assertInEventLoop()
        switch machine.pollReceived() {
        case .hold:
            pendingPoll = responder
        case .answer(let packets):
            _ = responder.answer(packets)
        case .answerAndClose(let packets, let action):
            _ = responder.answer(packets)
            perform(action)
        case .reject:
            if let webSocket {
                // Upgraded: the refusal leaves after what the WebSocket was sent (the
                // `3probe` among it), as the reference's single thread orders them.
                webSocket.afterFlushing { responder.reject() }
            } else {
                responder.reject()
            }
        case .rejectAndClose(let action):
            responder.reject()
            perform(action)
        case .answerOwedNoop:
            _ = server.takeOwedNoop(id)  // this GET was the one owed: a later one finds none
            _ = responder.answer([.noop])
        }
        resumeWritableWaiters()
    }

    func pollConnectionClosed(token: UInt64) {
        eventLoop.assertInEventLoop()
        guard pendingPoll?.token == token else { return }
        pendingPoll = nil
        if let action = machine.pollConnectionClosed() { perform(action) }
    }

    /// The body of a polling POST.
    func postReceived(_ packets: [EngineIOInboundPacket]) {
        eventLoop.assertInEventLoop()
        for packet in packets {
            perform(machine.receive(packet, from: .active))
            if machine.isClosed { return }
        }
    }

    // MARK: WebSocket

    func webSocketReceived(_ packet: EngineIOInboundPacket, on connection: any SessionWebSocket) {
        eventLoop.assertInEventLoop()
        if connection === webSocket {
            perform(machine.receive(packet, from: .active))
        } else if connection === upgradeCandidate {
            perform(machine.receive(packet, from: .upgradeCandidate))
        }
    }

    /// A WebSocket opened with this session's id wants to take over from polling.
    func upgradeCandidateConnected(_ connection: any SessionWebSocket) {
        eventLoop.assertInEventLoop()
        guard machine.upgradeCandidateConnected() else {
            connection.close(code: .normalClosure)
            return
        }
        upgradeCandidate = connection
        upgradeTimer = eventLoop.scheduleTask(in: configuration.upgradeTimeout) {
            guard self.upgradeCandidate === connection, self.machine.upgradeTimeoutElapsed() else { return }
            self.endUpgradeCandidate(closing: true)
        }
    }

    func webSocketClosed(_ connection: any SessionWebSocket, error: Bool) {
        eventLoop.assertInEventLoop()
        if connection === webSocket {
            webSocket = nil
            if let action = machine.webSocketClosed(error: error) { perform(action) }
        } else if connection === upgradeCandidate {
            endUpgradeCandidate(closing: false)
        }
    }

    // MARK: Performing actions

    private func perform(_ action: SessionStateMachine.SendAction) {
        switch action {
        case .none:
            break
        case .writeWebSocket(let packet):
            webSocket?.write(packet)
        case .answerPoll(let packets):
            _ = pendingPoll?.answer(packets)
            pendingPoll = nil
        case .close(let action):
            perform(action)
        }
    }

    private func perform(_ action: SessionStateMachine.ReceiveAction) {
        switch action {
        case .none:
            break
        case .deliver(let message):
            handler?.session(self, didReceive: message)
        case .pongReceived:
            pingTimeoutTimer?.cancel()
            pingTimeoutTimer = nil
            schedulePing()
        case .answerProbe:
            upgradeCandidate?.write(.probePong)
            upgradeCandidate?.afterFlushing {}
            upgradeCheckTask?.cancel()
            upgradeCheckTask = eventLoop.scheduleRepeatedTask(initialDelay: Self.upgradeCheckInterval, delay: Self.upgradeCheckInterval) { _ in
                if self.machine.upgradeCheckElapsed() { self.releasePoll() }
            }
        case .completeUpgrade(let rejectPendingPoll, let flush):
            let refused = rejectPendingPoll ? pendingPoll : nil
            pendingPoll = nil
            cancelUpgradeTimers()
            webSocket = upgradeCandidate
            upgradeCandidate = nil
            webSocket?.write(flush)
            // Polling requests are refused from here on, the waiting one first; but only
            // once the `3probe` has left on the WebSocket's own loop, so that no client sees
            // the refusal first (the reference, on one thread, writes them in that order).
            let server = self.server
            let id = self.id
            webSocket?.afterFlushing {
                server.sessionUpgraded(id)
                refused?.reject()
            }
            resumeWritableWaiters()
            handler?.sessionDidUpgrade(self)
        case .closeUpgradeCandidate:
            endUpgradeCandidate(closing: true)
        case .close(let action):
            perform(action)
        }
    }

    /// The future completes once what the close sends the client (the `1` to a waiting GET,
    /// the WebSocket's close frame) is written.
    @discardableResult
    private func perform(_ action: SessionStateMachine.CloseAction) -> EventLoopFuture<Void> {
        var written: [EventLoopFuture<Void>] = []
        if let packets = action.answerPendingPoll, let pendingPoll {
            written.append(pendingPoll.answer(packets))
        }
        pendingPoll = nil
        if action.closeWebSocket, let webSocket {
            written.append(webSocket.close(code: action.reason == .serverShuttingDown ? .goingAway : .normalClosure))
        }
        webSocket = nil
        if action.closeUpgradeCandidate { upgradeCandidate?.close(code: .normalClosure) }
        upgradeCandidate = nil
        cancelHeartbeat()
        cancelUpgradeTimers()
        closeTimer?.cancel()
        closeTimer = nil
        server.sessionClosed(id, reason: action.reason, owesNoop: action.owesNoopToNextPoll, on: eventLoop)
        let waiters = writableWaiters
        writableWaiters = []
        for waiter in waiters { waiter.fail(EngineIOSessionClosedError()) }
        let handler = self.handler
        self.handler = nil
        handler?.session(self, didCloseWith: action.reason)
        return .andAllComplete(written, on: eventLoop)
    }

    private func releasePoll() {
        _ = pendingPoll?.answer([.noop])
        pendingPoll = nil
    }

    /// How often a polling GET is released while an upgrade is probed: the reference's.
    static let upgradeCheckInterval = TimeAmount.milliseconds(100)

    private func cancelUpgradeTimers() {
        upgradeTimer?.cancel()
        upgradeTimer = nil
        upgradeCheckTask?.cancel()
        upgradeCheckTask = nil
    }

    private func endUpgradeCandidate(closing: Bool) {
        machine.upgradeCandidateEnded()
        cancelUpgradeTimers()
        if closing { upgradeCandidate?.close(code: .normalClosure) }
        upgradeCandidate = nil
    }

    // MARK: Heartbeat

    private func schedulePing() {
        pingTimer = eventLoop.scheduleTask(in: configuration.pingInterval) {
            self.pingIntervalElapsed()
        }
    }

    private func pingIntervalElapsed() {
        guard let action = machine.pingIntervalElapsed() else { return }
        perform(action)
        pingTimeoutTimer = eventLoop.scheduleTask(in: configuration.pingTimeout) {
            if let action = self.machine.pingTimeoutElapsed() { self.perform(action) }
        }
    }

    private func cancelHeartbeat() {
        pingTimer?.cancel()
        pingTimer = nil
        pingTimeoutTimer?.cancel()
        pingTimeoutTimer = nil
    }
}

extension TimeAmount {
    var milliseconds: Int64 { nanoseconds / 1_000_000 }
}
