import NIOCore
import Testing

@testable import EngineIO

@Suite struct SessionStateMachineTests {
    typealias Machine = SessionStateMachine
    let hello = EngineIOOutboundPacket.message(.text("hello"))
    let world = EngineIOOutboundPacket.message(.text("world"))

    private func connectCandidate(_ machine: inout Machine) -> Bool {
        machine.upgradeCandidateConnected()
    }

    // MARK: Polling

    @Test func pollingBuffersUntilAGetArrives() {
        var machine = Machine(transport: .polling)
        #expect(machine.send(hello) == .none)
        #expect(machine.send(world) == .none)
        #expect(machine.pollReceived() == .answer([hello, world]))
        #expect(machine.writeBuffer.isEmpty)
    }

    @Test func aWaitingGetIsAnsweredByTheNextSend() {
        var machine = Machine(transport: .polling)
        #expect(machine.pollReceived() == .hold)
        #expect(machine.send(hello) == .answerPoll([hello]))
        #expect(machine.send(world) == .none)
        #expect(machine.pollReceived() == .answer([world]))
    }

    /// python-engineio's clients drop a payload of more than 16 packets: a longer queue
    /// leaves 16 at a time, each GET answered at once.
    @Test func aLongQueueLeavesAtMostSixteenPacketsPerGet() {
        var machine = Machine(transport: .polling)
        let packets = (0..<40).map { EngineIOOutboundPacket.message(.text("\($0)")) }
        for packet in packets { #expect(machine.send(packet) == .none) }
        #expect(machine.pollReceived() == .answer(Array(packets[0..<16])))
        #expect(machine.pollReceived() == .answer(Array(packets[16..<32])))
        #expect(!machine.writeBuffer.isEmpty)  // not writable yet: the client has not had it all
        #expect(machine.pollReceived() == .answer(Array(packets[32...])))
        #expect(machine.pollReceived() == .hold)
    }

    @Test func aServerCloseBehindALongQueueLeavesWithItsLastPage() {
        var machine = Machine(transport: .polling, maxPacketsPerPoll: 4)
        let packets = (0..<6).map { EngineIOOutboundPacket.message(.text("\($0)")) }
        for packet in packets { _ = machine.send(packet) }
        #expect(machine.closeRequested() == .awaitPoll(closeUpgradeCandidate: false))
        #expect(machine.pollReceived() == .answer(Array(packets[0..<4])))
        guard case .answerAndClose(let last, _) = machine.pollReceived() else {
            Issue.record("expected the last page to carry the close")
            return
        }
        #expect(last == Array(packets[4...]) + [.close])
        #expect(machine.isClosed)
    }

    @Test func aSecondConcurrentGetClosesTheSession() {
        var machine = Machine(transport: .polling)
        #expect(machine.pollReceived() == .hold)
        let action = machine.pollReceived()
        #expect(action == .rejectAndClose(.init(reason: .transportError, answerPendingPoll: [.close], closeWebSocket: false, closeUpgradeCandidate: false)))
        #expect(machine.isClosed)
        #expect(machine.pollReceived() == .reject)
    }

    @Test func aDroppedGetClosesTheSession() {
        var machine = Machine(transport: .polling)
        #expect(machine.pollConnectionClosed() == nil)  // no GET waiting: nothing to do
        #expect(machine.pollReceived() == .hold)
        #expect(machine.pollConnectionClosed()?.reason == .transportError)
        #expect(machine.isClosed)
    }

    @Test func messagesArriveInOrder() {
        var machine = Machine(transport: .polling)
        #expect(machine.receive(.message(.text("a")), from: .active) == .deliver(.text("a")))
        #expect(machine.receive(.message(.binary(ByteBuffer(bytes: [1]))), from: .active) == .deliver(.binary(ByteBuffer(bytes: [1]))))
        #expect(machine.receive(.noop, from: .active) == .none)
        #expect(machine.receive(.upgrade, from: .active) == .none)
    }

    @Test func aClientCloseReleasesTheWaitingGetWithANoop() {
        var machine = Machine(transport: .polling)
        _ = machine.pollReceived()
        #expect(machine.receive(.close, from: .active) == .close(.init(reason: .transportClose, answerPendingPoll: [.noop], closeWebSocket: false, closeUpgradeCandidate: false)))
        #expect(machine.receive(.message(.text("late")), from: .active) == .none)
    }

    @Test func aClientCloseWithNoGetWaitingOwesTheNextGetANoop() {
        var machine = Machine(transport: .polling)
        #expect(machine.receive(.close, from: .active) == .close(.init(reason: .transportClose, answerPendingPoll: nil, closeWebSocket: false, closeUpgradeCandidate: false, owesNoopToNextPoll: true)))
        // Only a client's close over polling: a server close or a WebSocket owes nothing.
        var websocket = Machine(transport: .websocket)
        #expect(websocket.receive(.close, from: .active) == .close(.init(reason: .transportClose, answerPendingPoll: nil, closeWebSocket: true, closeUpgradeCandidate: false)))
        // A GET that reaches the closed session (read before the close, handed over after)
        // is the one owed: answered `6`, once.
        #expect(machine.pollReceived() == .answerOwedNoop)
        #expect(machine.pollReceived() == .reject)
        var timedOut = Machine(transport: .polling)
        _ = timedOut.pingIntervalElapsed()
        #expect(timedOut.pingTimeoutElapsed()?.owesNoopToNextPoll == false)
    }

    @Test func protocolViolationsClose() {
        var parse = Machine(transport: .websocket)
        #expect(parse.receive(.invalid, from: .active) == .close(.init(reason: .parseError, answerPendingPoll: nil, closeWebSocket: true, closeUpgradeCandidate: false)))
        var ping = Machine(transport: .polling)
        _ = ping.pollReceived()
        #expect(ping.receive(.ping(""), from: .active) == .close(.init(reason: .transportError, answerPendingPoll: [.close], closeWebSocket: false, closeUpgradeCandidate: false)))
    }

    @Test func sendsAfterCloseAreDropped() {
        var machine = Machine(transport: .websocket)
        _ = machine.receive(.close, from: .active)
        #expect(machine.send(hello) == .none)
        #expect(machine.pingIntervalElapsed() == nil)
    }

    // MARK: WebSocket

    @Test func webSocketWritesImmediately() {
        var machine = Machine(transport: .websocket)
        #expect(machine.send(hello) == .writeWebSocket(hello))
        #expect(machine.writeBuffer.isEmpty)
        #expect(machine.pollReceived() == .reject)
    }

    @Test func webSocketCloseEndsTheSession() {
        var clean = Machine(transport: .websocket)
        #expect(clean.webSocketClosed(error: false) == .init(reason: .transportClose, answerPendingPoll: nil, closeWebSocket: false, closeUpgradeCandidate: false))
        var broken = Machine(transport: .websocket)
        #expect(broken.webSocketClosed(error: true)?.reason == .transportError)
        var polling = Machine(transport: .polling)
        #expect(polling.webSocketClosed(error: false) == nil)
    }

    // MARK: Heartbeat

    @Test func pingThenPongKeepsTheSessionOpen() {
        var machine = Machine(transport: .websocket)
        #expect(machine.pingIntervalElapsed() == .writeWebSocket(.ping))
        #expect(machine.receive(.pong(""), from: .active) == .pongReceived)
        #expect(machine.pingTimeoutElapsed() == nil)
        #expect(!machine.isClosed)
    }

    @Test func aMissingPongClosesWithPingTimeout() {
        var machine = Machine(transport: .polling)
        #expect(machine.pingIntervalElapsed() == SessionStateMachine.SendAction.none)  // buffered for the next GET
        #expect(machine.pollReceived() == .answer([.ping]))
        #expect(machine.pollReceived() == .hold)
        #expect(machine.pingTimeoutElapsed() == .init(reason: .pingTimeout, answerPendingPoll: [.close], closeWebSocket: false, closeUpgradeCandidate: false))
    }

    @Test func anUnexpectedPongIsIgnored() {
        var machine = Machine(transport: .websocket)
        #expect(machine.receive(.pong(""), from: .active) == .none)
    }

    // MARK: Upgrade

    /// A tick of the upgrade check; whether it released a waiting GET.
    private func tick(_ machine: inout Machine) -> Bool {
        machine.upgradeCheckElapsed()
    }

    @Test func upgradeReleasesTheWaitingGetOnTheCheckTickAndFlushesToTheWebSocket() {
        var machine = Machine(transport: .polling)
        #expect(machine.pollReceived() == .hold)
        #expect(connectCandidate(&machine))
        #expect(!connectCandidate(&machine))  // only one upgrade at a time
        #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
        // The reference releases the waiting GET on its 100 ms check, not at the probe.
        #expect(tick(&machine))
        #expect(!tick(&machine))  // nothing waits any more
        // Sent while the client pauses polling: buffered for the WebSocket.
        #expect(machine.send(hello) == .none)
        #expect(machine.receive(.upgrade, from: .upgradeCandidate) == .completeUpgrade(rejectPendingPoll: false, flush: [hello]))
        #expect(machine.transport == .websocket)
        #expect(machine.send(world) == .writeWebSocket(world))
        #expect(!connectCandidate(&machine))
    }

    @Test func aGetArrivingMidUpgradeWaitsForTheCheckTick() {
        var machine = Machine(transport: .polling)
        #expect(connectCandidate(&machine))
        #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
        #expect(machine.pollReceived() == .hold)
        #expect(tick(&machine))
        // With data queued, the GET carries the data at once.
        _ = machine.send(hello)
        #expect(machine.pollReceived() == .answer([hello]))
    }

    @Test func aGetBeforeTheProbeIsHeldUntilTheCheckTick() {
        var machine = Machine(transport: .polling)
        #expect(connectCandidate(&machine))
        #expect(!tick(&machine))  // not probed yet: the tick does nothing
        #expect(machine.pollReceived() == .hold)
        #expect(!tick(&machine))
        #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
        #expect(tick(&machine))
    }

    /// The official suites' "ignores HTTP requests with same sid after upgrade": the client
    /// sends `2probe`, `5`, then a GET on another connection. Whichever event loop gets to the
    /// session first, the GET is refused and the session goes on over the WebSocket.
    @Test func aGetWaitingWhenTheUpgradeCompletesIsRefused() {
        for getFirst in [true, false] {
            var machine = Machine(transport: .polling)
            #expect(connectCandidate(&machine))
            if getFirst { #expect(machine.pollReceived() == .hold) }
            #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
            if !getFirst { #expect(machine.pollReceived() == .hold) }
            #expect(machine.receive(.upgrade, from: .upgradeCandidate) == .completeUpgrade(rejectPendingPoll: true, flush: []))
            #expect(machine.pollReceived() == .reject)
            #expect(machine.transport == .websocket)
            #expect(!machine.isClosed)
        }
    }

    @Test func aPostMidUpgradeIsStillDelivered() {
        var machine = Machine(transport: .polling)
        #expect(connectCandidate(&machine))
        #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
        #expect(machine.receive(.message(.text("via polling")), from: .active) == .deliver(.text("via polling")))
        #expect(machine.receive(.upgrade, from: .upgradeCandidate) == .completeUpgrade(rejectPendingPoll: false, flush: []))
        #expect(machine.receive(.message(.text("via websocket")), from: .active) == .deliver(.text("via websocket")))
    }

    @Test func aCandidateThatBreaksTheHandshakeIsClosed() {
        var machine = Machine(transport: .polling)
        #expect(connectCandidate(&machine))
        #expect(machine.receive(.message(.text("too early")), from: .upgradeCandidate) == .closeUpgradeCandidate)
        #expect(machine.transport == .polling)
        #expect(connectCandidate(&machine))  // another attempt may follow
    }

    /// The upgrade timeout ends a candidate that was never probed; once `3probe` is out the
    /// official client has paused polling for good, and only `5` on that WebSocket lets it go
    /// on, however long its last GET takes to arrive.
    @Test func theUpgradeTimeoutEndsOnlyACandidateNotProbedYet() {
        var machine = Machine(transport: .polling)
        #expect(!machine.upgradeTimeoutElapsed())  // no candidate
        #expect(connectCandidate(&machine))
        #expect(machine.upgradeTimeoutElapsed())
        machine.upgradeCandidateEnded()
        #expect(connectCandidate(&machine))
        #expect(machine.receive(.ping("probe"), from: .upgradeCandidate) == .answerProbe)
        #expect(!machine.upgradeTimeoutElapsed())
        #expect(machine.receive(.upgrade, from: .upgradeCandidate) == .completeUpgrade(rejectPendingPoll: false, flush: []))
        #expect(!machine.upgradeTimeoutElapsed())  // upgraded
    }

    @Test func aCandidateThatGoesAwayLeavesPollingInCharge() {
        var machine = Machine(transport: .polling)
        #expect(connectCandidate(&machine))
        machine.upgradeCandidateEnded()
        #expect(machine.transport == .polling)
        #expect(machine.send(hello) == .none)
        #expect(machine.pollReceived() == .answer([hello]))
    }

    @Test func closingMidUpgradeClosesTheCandidateToo() {
        var machine = Machine(transport: .polling)
        _ = machine.pollReceived()
        #expect(connectCandidate(&machine))
        #expect(machine.pingIntervalElapsed() == .answerPoll([.ping]))
        #expect(machine.pollReceived() == .hold)
        #expect(machine.pingTimeoutElapsed() == .init(reason: .pingTimeout, answerPendingPoll: [.close], closeWebSocket: false, closeUpgradeCandidate: true))
    }

    @Test func aWebSocketSessionRefusesUpgrades() {
        var machine = Machine(transport: .websocket)
        #expect(!connectCandidate(&machine))
    }

    // MARK: Server close

    @Test func serverCloseWithAWaitingGetSendsCloseAtOnce() {
        var machine = Machine(transport: .polling)
        _ = machine.pollReceived()
        #expect(machine.closeRequested() == .close(.init(reason: .forcedClose, answerPendingPoll: [.close], closeWebSocket: false, closeUpgradeCandidate: false)))
    }

    @Test func serverCloseWithoutAGetWaitsForTheNextOne() {
        var machine = Machine(transport: .polling)
        _ = machine.send(hello)
        #expect(machine.closeRequested() == .awaitPoll(closeUpgradeCandidate: false))
        #expect(machine.send(world) == .none)  // dropped: the session is closing
        #expect(machine.receive(.message(.text("late")), from: .active) == .none)
        guard case .answerAndClose(let packets, let action) = machine.pollReceived() else {
            Issue.record("expected the closing GET to be answered")
            return
        }
        #expect(packets == [hello, .close])
        #expect(action.reason == .forcedClose)
        #expect(machine.isClosed)
    }

    @Test func serverCloseTimesOutWithoutAGet() {
        var machine = Machine(transport: .polling)
        #expect(machine.closeRequested() == .awaitPoll(closeUpgradeCandidate: false))
        #expect(machine.closeTimeoutElapsed()?.reason == .forcedClose)
        #expect(machine.closeTimeoutElapsed() == nil)
    }

    @Test func aPollingClientThatStopsFetchingIsDropped() {
        var machine = Machine(transport: .polling, maxQueuedPackets: 3)
        for _ in 0..<3 { #expect(machine.send(hello) == .none) }
        guard case .close(let action) = machine.send(hello) else {
            Issue.record("expected the full queue to close the session")
            return
        }
        #expect(action.reason == .transportError)
    }

    @Test func closeNowDoesNotWaitForAGet() {
        var machine = Machine(transport: .polling)
        _ = machine.send(hello)
        #expect(machine.closeNow(reason: .serverShuttingDown)?.reason == .serverShuttingDown)
        #expect(machine.isClosed)
        #expect(machine.closeNow(reason: .transportError) == nil)
    }

    @Test func serverCloseOnWebSocketClosesIt() {
        var machine = Machine(transport: .websocket)
        #expect(machine.closeRequested() == .close(.init(reason: .forcedClose, answerPendingPoll: nil, closeWebSocket: true, closeUpgradeCandidate: false)))
        #expect(machine.closeRequested() == .none)
    }
}
