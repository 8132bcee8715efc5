import NIOCore

/// The protocol logic of one Engine.IO session, as a value that takes events and returns
/// what to do. It owns no sockets, timers or clocks: `EngineIOSession` performs the actions
/// on the session's event loop, and the tests drive every transition directly.
///
/// The lifecycle is open (on polling or WebSocket; while on polling, a WebSocket may be
/// upgrading) → closing (the server closed a polling session and waits for the GET that
/// carries its `1`) → closed.
struct SessionStateMachine {
    /// An upgrade in progress: a WebSocket opened with this session's id.
    enum Upgrade: Hashable {
        case none
        /// The WebSocket is open; the client has not sent `2probe` yet.
        case connected
        /// `3probe` was sent; the next packet from the client should be `5`.
        case probed
    }

    struct Open: Hashable {
        var transport: EngineIOTransportKind
        /// A polling GET is waiting for something to send.
        var pollPending = false
        var upgrade: Upgrade = .none
        var awaitingPong = false
    }

    enum State: Hashable {
        case open(Open)
        case closing(Open)
        case closed
    }

    /// Where an inbound packet came from.
    enum Source: Hashable {
        /// The transport currently carrying the session.
        case active
        /// A WebSocket that is upgrading the session and does not carry data yet.
        case upgradeCandidate
    }

    /// What to do when the session ends.
    struct CloseAction: Hashable {
        var reason: EngineIOCloseReason
        /// Packets to answer a waiting polling GET with, if one is waiting.
        var answerPendingPoll: [EngineIOOutboundPacket]?
        /// Close the WebSocket carrying the session.
        var closeWebSocket: Bool
        /// Close a WebSocket that was upgrading the session.
        var closeUpgradeCandidate: Bool
        /// The client closed a polling session with no GET waiting: the GET it may have
        /// sent together with its close is owed the `6` it would have got had it been read
        /// first (`EngineIOServer.sessionClosed`).
        var owesNoopToNextPoll: Bool = false
    }

    enum SendAction: Hashable {
        case none
        case writeWebSocket(EngineIOOutboundPacket)
        case answerPoll([EngineIOOutboundPacket])
        /// The polling client stopped fetching: its queue is full, the session ends.
        case close(CloseAction)
    }

    enum PollAction: Hashable {
        /// Keep the GET open until there is something to send.
        case hold
        /// Answer the GET with these packets.
        case answer([EngineIOOutboundPacket])
        /// Answer the GET with these packets (ending in `1`), then the session is closed.
        case answerAndClose([EngineIOOutboundPacket], CloseAction)
        /// Answer the GET with a bare 400 and leave the session alone.
        case reject
        /// A second GET while one is waiting: answer it with a bare 400 and close the session.
        case rejectAndClose(CloseAction)
        /// The client closed the session with this GET on its way (read before the close, but
        /// handed to the session after it): answer it `6`, as if it had been waiting, and take
        /// the server's owed noop, which this GET was.
        case answerOwedNoop
    }

    enum ReceiveAction: Hashable {
        case none
        case deliver(EngineIOMessage)
        /// The pong arrived: stop the ping timeout, time the next ping from now.
        case pongReceived
        /// Answer the candidate's `2probe` with `3probe` and start the upgrade check timer,
        /// whose ticks release a waiting GET with `6` (`upgradeCheckElapsed()`).
        case answerProbe
        /// The WebSocket now carries the session: refuse a waiting GET with a bare 400 (the
        /// polling transport is gone), then write the buffered packets to the WebSocket.
        case completeUpgrade(rejectPendingPoll: Bool, flush: [EngineIOOutboundPacket])
        /// The candidate broke the upgrade handshake; close it, the session stays on polling.
        case closeUpgradeCandidate
        case close(CloseAction)
    }

    enum ServerCloseAction: Hashable {
        case none
        case close(CloseAction)
        /// Polling with no GET waiting: the `1` leaves with the next GET, or at `closeTimeout`.
        case awaitPoll(closeUpgradeCandidate: Bool)
    }

    private(set) var state: State
    /// Packets waiting for a polling GET. Always empty while a WebSocket carries the session:
    /// those packets are written as they are sent.
    private(set) var writeBuffer = CircularBuffer<EngineIOOutboundPacket>()

    /// Packets a polling session may queue before its client counts as too slow.
    let maxQueuedPackets: Int
    /// The most packets one polling response carries (`EngineIOConfiguration.maxPacketsPerPoll`).
    let maxPacketsPerPoll: Int

    /// Set when the client closed a polling session with no GET waiting: the GET it sent
    /// with its close is owed a `6` (`CloseAction.owesNoopToNextPoll`).
    private(set) var owesNoop = false

    init(transport: EngineIOTransportKind, maxQueuedPackets: Int = 10_000, maxPacketsPerPoll: Int = 16) {
        self.state = .open(Open(transport: transport))
        self.maxQueuedPackets = maxQueuedPackets
        self.maxPacketsPerPoll = max(maxPacketsPerPoll, 1)
    }

    var isClosed: Bool { state == .closed }

    var transport: EngineIOTransportKind? {
        switch state {
        case .open(let open), .closing(let open): open.transport
        case .closed: nil
        }
    }

    // MARK: Sending

    mutating func send(_ packet: EngineIOOutboundPacket) -> SendAction {
        guard case .open(var open) = state else { return .none }
        if open.transport == .websocket { return .writeWebSocket(packet) }
        guard writeBuffer.count < maxQueuedPackets || open.pollPending else {
            return .close(close(open, reason: .transportError))
        }
        writeBuffer.append(packet)
        guard open.pollPending else { return .none }
        open.pollPending = false
        state = .open(open)
        return .answerPoll(takePollResponse())
    }

    // MARK: Polling

    mutating func pollReceived() -> PollAction {
        switch state {
        case .open(var open):
            guard open.transport == .polling else { return .reject }
            if open.pollPending {
                // The reference answers the waiting GET with `1` and the new one with a 400.
                return .rejectAndClose(close(open, reason: .transportError))
            }
            if !writeBuffer.isEmpty { return .answer(takePollResponse()) }
            // While upgrading, the GET waits for the next tick of the upgrade check, as in
            // the reference: a GET that in fact followed the client's `5` (on another
            // connection, read on another event loop) is then refused when the `5` is
            // processed, instead of being answered as if it had come first.
            open.pollPending = true
            state = .open(open)
            return .hold
        case .closing(let open):
            // The `1` goes with the last of the queue, a response at a time.
            guard writeBuffer.count < maxPacketsPerPoll else { return .answer(takePollResponse()) }
            var packets = takeWriteBuffer()
            packets.append(.close)
            var action = close(open, reason: .forcedClose)
            action.answerPendingPoll = nil
            return .answerAndClose(packets, action)
        case .closed:
            guard owesNoop else { return .reject }
            owesNoop = false
            return .answerOwedNoop
        }
    }

    /// The connection of the waiting GET went away.
    mutating func pollConnectionClosed() -> CloseAction? {
        guard case .open(var open) = state, open.pollPending else { return nil }
        open.pollPending = false
        return close(open, reason: .transportError)
    }

    // MARK: Receiving

    mutating func receive(_ packet: EngineIOInboundPacket, from source: Source) -> ReceiveAction {
        switch source {
        case .active: receiveOnActiveTransport(packet)
        case .upgradeCandidate: receiveOnUpgradeCandidate(packet)
        }
    }

    private mutating func receiveOnActiveTransport(_ packet: EngineIOInboundPacket) -> ReceiveAction {
        switch state {
        case .open(var open):
            switch packet {
            case .message(let message):
                return .deliver(message)
            case .pong:
                guard open.awaitingPong else { return .none }
                open.awaitingPong = false
                state = .open(open)
                return .pongReceived
            case .ping:
                // Protocol 4 pings only from server to client.
                return .close(close(open, reason: .transportError))
            case .close:
                return .close(close(open, reason: .transportClose))
            case .invalid:
                return .close(close(open, reason: .parseError))
            case .open, .upgrade, .noop:
                return .none
            }
        case .closing(let open):
            if packet == .close { return .close(close(open, reason: .transportClose)) }
            return .none
        case .closed:
            return .none
        }
    }

    private mutating func receiveOnUpgradeCandidate(_ packet: EngineIOInboundPacket) -> ReceiveAction {
        guard case .open(var open) = state, open.upgrade != .none else {
            if case .closing(let open) = state, open.upgrade != .none {
                return .close(close(open, reason: .forcedClose))
            }
            return .closeUpgradeCandidate
        }
        switch packet {
        case .ping("probe"):
            open.upgrade = .probed
            state = .open(open)
            return .answerProbe
        case .upgrade:
            let reject = open.pollPending
            open.pollPending = false
            open.upgrade = .none
            open.transport = .websocket
            state = .open(open)
            return .completeUpgrade(rejectPendingPoll: reject, flush: takeWriteBuffer())
        default:
            open.upgrade = .none
            state = .open(open)
            return .closeUpgradeCandidate
        }
    }

    // MARK: Upgrades

    /// A WebSocket arrived with this session's id. Returns false when it must be refused:
    /// the session is not on polling, or another upgrade is already under way.
    mutating func upgradeCandidateConnected() -> Bool {
        guard case .open(var open) = state, open.transport == .polling, open.upgrade == .none else {
            return false
        }
        open.upgrade = .connected
        state = .open(open)
        return true
    }

    /// A tick of the upgrade check (every 100 ms after the probe, as the reference's
    /// `check` interval): a polling client that is pausing for the upgrade gets its waiting
    /// GET back with `6`. Returns whether to answer the waiting GET with a noop.
    mutating func upgradeCheckElapsed() -> Bool {
        guard case .open(var open) = state, open.upgrade == .probed, open.pollPending else { return false }
        open.pollPending = false
        state = .open(open)
        return true
    }

    /// `upgradeTimeout` elapsed since the candidate connected. Returns whether to end it.
    ///
    /// Only a candidate that has not been probed is ended, as the reference ends it: its
    /// client has not stopped polling yet and goes on without the upgrade. One that was sent
    /// `3probe` is kept. Its client has paused polling for good and sends `5` once the
    /// response to its last GET has arrived, which over a slow link can take longer than
    /// the timeout; ended then, the official client neither upgrades nor polls again and
    /// hangs until its own heartbeat gives up, 45 s later (the reference strands it so). The
    /// heartbeat bounds the wait here too: a client that stops answering pings is closed.
    func upgradeTimeoutElapsed() -> Bool {
        guard case .open(let open) = state else { return false }
        return open.upgrade == .connected
    }

    /// The upgrading WebSocket closed, or took too long: the session stays on polling.
    mutating func upgradeCandidateEnded() {
        switch state {
        case .open(var open):
            open.upgrade = .none
            state = .open(open)
        case .closing(var open):
            open.upgrade = .none
            state = .closing(open)
        case .closed:
            break
        }
    }

    /// The WebSocket carrying the session closed (cleanly or not).
    mutating func webSocketClosed(error: Bool) -> CloseAction? {
        switch state {
        case .open(let open) where open.transport == .websocket:
            var action = close(open, reason: error ? .transportError : .transportClose)
            action.closeWebSocket = false
            return action
        default:
            return nil
        }
    }

    // MARK: Heartbeat

    /// `pingInterval` elapsed: send a ping and start waiting for the pong.
    mutating func pingIntervalElapsed() -> SendAction? {
        guard case .open(var open) = state else { return nil }
        open.awaitingPong = true
        state = .open(open)
        return send(.ping)
    }

    /// `pingTimeout` elapsed after a ping.
    mutating func pingTimeoutElapsed() -> CloseAction? {
        guard case .open(let open) = state, open.awaitingPong else { return nil }
        return close(open, reason: .pingTimeout)
    }

    // MARK: Closing

    /// The server closes the session.
    mutating func closeRequested(reason: EngineIOCloseReason = .forcedClose) -> ServerCloseAction {
        guard case .open(var open) = state else { return .none }
        if open.transport == .polling && !open.pollPending {
            let closeCandidate = open.upgrade != .none
            open.upgrade = .none
            state = .closing(open)
            return .awaitPoll(closeUpgradeCandidate: closeCandidate)
        }
        return .close(close(open, reason: reason))
    }

    /// Ends the session at once, without waiting for a GET to carry the `1`: the client
    /// broke the transport's rules ("transport error", as the reference's transport errors
    /// do), or the server is going away ("server shutting down").
    mutating func closeNow(reason: EngineIOCloseReason) -> CloseAction? {
        switch state {
        case .open(let open), .closing(let open): close(open, reason: reason)
        case .closed: nil
        }
    }

    /// The GET that should have carried the `1` did not come in time.
    mutating func closeTimeoutElapsed() -> CloseAction? {
        guard case .closing(let open) = state else { return nil }
        return close(open, reason: .forcedClose)
    }

    private mutating func close(_ open: Open, reason: EngineIOCloseReason) -> CloseAction {
        var answer: [EngineIOOutboundPacket]? = nil
        if open.pollPending {
            // A client that closed gets a noop on its waiting GET; any other ending, a `1`.
            answer = reason == .transportClose ? [.noop] : takeWriteBuffer() + [.close]
        }
        state = .closed
        writeBuffer.removeAll()
        owesNoop = reason == .transportClose && open.transport == .polling && !open.pollPending
        return CloseAction(
            reason: reason,
            answerPendingPoll: answer,
            closeWebSocket: open.transport == .websocket,
            closeUpgradeCandidate: open.upgrade != .none,
            owesNoopToNextPoll: owesNoop
        )
    }

    private mutating func takeWriteBuffer() -> [EngineIOOutboundPacket] {
        let packets = Array(writeBuffer)
        // A short queue's storage serves the next packets; a long backlog's is let go.
        writeBuffer.removeAll(keepingCapacity: writeBuffer.capacity <= 64)
        return packets
    }

    /// What one polling response carries: the queue, or its first `maxPacketsPerPoll`
    /// packets (the rest wait for the next GET, which the client sends at once).
    private mutating func takePollResponse() -> [EngineIOOutboundPacket] {
        guard writeBuffer.count > maxPacketsPerPoll else { return takeWriteBuffer() }
        let response = Array(writeBuffer.prefix(maxPacketsPerPoll))
        writeBuffer.removeFirst(maxPacketsPerPoll)  // a ring buffer: O(packets taken), not O(queue)
        return response
    }
}
