import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import SocketIO
import Testing

@testable import Chat

/// `SnapshotReader`: one read at a time, requests that arrive during a read answered by the
/// next one (never by one that started before them), and a failed read answered with null.
/// What read n answers.
func snapshot(_ number: Int) -> JSONValue {
    [["id": .string("\(number)"), "username": .string("user \(number)")]]
}

@Suite struct SnapshotReaderTests {
    /// A stand-in for the cluster whose reads the test lets finish one by one; read n
    /// answers with a socket named "n".
    final class Reads: Sendable {
        private struct State {
            var started = 0
            var held: [CheckedContinuation<Void, Never>] = []
            var startWatchers: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
            var failNext = false
        }
        private let state = NIOLockedValueBox(State())

        var started: Int { state.withLockedValue { $0.started } }

        func failTheNextRead() { state.withLockedValue { $0.failNext = true } }

        func read() async throws -> JSONValue {
            var number = 0
            var fail = false
            await withCheckedContinuation { continuation in
                let ready = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                    state.started += 1
                    number = state.started
                    fail = state.failNext
                    state.failNext = false
                    state.held.append(continuation)
                    let ready = state.startWatchers.filter { $0.count <= state.started }.map(\.continuation)
                    state.startWatchers.removeAll { $0.count <= state.started }
                    return ready
                }
                for watcher in ready { watcher.resume() }
            }
            if fail { throw SocketIOClusterTimeout(received: 1, expected: 2) }
            return snapshot(number)
        }

        /// Returns once `count` reads have started.
        func waitForStart(_ count: Int) async {
            await withCheckedContinuation { continuation in
                let now = state.withLockedValue { state -> Bool in
                    if state.started >= count { return true }
                    state.startWatchers.append((count, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }

        /// Lets the oldest read that is held finish.
        func finishOne() {
            state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                state.held.isEmpty ? nil : state.held.removeFirst()
            }?.resume()
        }
    }

    /// The answers the requests got, by request name.
    final class Answers: Sendable {
        private struct State {
            var values: [String: JSONValue] = [:]
            var watchers: [(names: [String], continuation: CheckedContinuation<Void, Never>)] = []
        }
        private let state = NIOLockedValueBox(State())

        func record(_ name: String) -> SnapshotReader.Answer {
            { value in
                let ready = self.state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
                    state.values[name] = value
                    let values = state.values
                    let ready = state.watchers.filter { $0.names.allSatisfy { values[$0] != nil } }
                    state.watchers.removeAll { $0.names.allSatisfy { values[$0] != nil } }
                    return ready.map(\.continuation)
                }
                for watcher in ready { watcher.resume() }
            }
        }

        subscript(name: String) -> JSONValue? { state.withLockedValue { $0.values[name] } }

        /// Returns once every one of `names` has its answer.
        func waitFor(_ names: [String]) async {
            await withCheckedContinuation { continuation in
                let now = state.withLockedValue { state -> Bool in
                    if names.allSatisfy({ state.values[$0] != nil }) { return true }
                    state.watchers.append((names, continuation))
                    return false
                }
                if now { continuation.resume() }
            }
        }
    }

    @Test func requestsDuringAReadAreAnsweredByTheNextReadTogether() async throws {
        let reads = Reads()
        let reader = SnapshotReader(read: reads.read)
        let answers = Answers()
        reader.request(answers.record("a"))
        await reads.waitForStart(1)
        // Read 1 is under way: these must not get its answer, which may predate them.
        reader.request(answers.record("b"))
        reader.request(answers.record("c"))
        reads.finishOne()
        await answers.waitFor(["a"])
        #expect(answers["a"] == snapshot(1))
        // (Answered from read 1, they would be now, and no read 2 would come.)
        try #require(answers["b"] == nil && answers["c"] == nil)
        await reads.waitForStart(2)
        reads.finishOne()
        await answers.waitFor(["b", "c"])
        #expect(answers["b"] == snapshot(2) && answers["c"] == snapshot(2))
        #expect(reads.started == 2)  // three requests, two reads

        // Idle again: the next request starts a read of its own.
        reader.request(answers.record("d"))
        await reads.waitForStart(3)
        reads.finishOne()
        await answers.waitFor(["d"])
        #expect(answers["d"] == snapshot(3))
    }

    @Test func aFailedReadIsAnsweredWithNull() async throws {
        let reads = Reads()
        let reader = SnapshotReader(read: reads.read)
        let answers = Answers()
        reads.failTheNextRead()
        reader.request(answers.record("a"))
        await reads.waitForStart(1)
        reads.finishOne()
        await answers.waitFor(["a"])
        #expect(answers["a"] == .null)
    }
}

/// `PresenceChanges`: the changes of one delay leave together, in order, once.
@Suite struct PresenceChangesTests {
    @Test func changesWithinTheDelayLeaveAsOneBroadcastInOrder() {
        let loop = EmbeddedEventLoop()
        let sent = NIOLockedValueBox<[[JSONValue]]>([])
        let changes = PresenceChanges(delay: .milliseconds(100)) { batch in sent.withLockedValue { $0.append(batch) } }
        changes.add(["id": "a", "online": true], on: loop)
        loop.advanceTime(by: .milliseconds(50))
        changes.add(["id": "b", "online": true], on: loop)
        changes.add(["id": "a", "online": false], on: loop)
        #expect(sent.withLockedValue { $0 }.isEmpty)
        loop.advanceTime(by: .milliseconds(50))
        #expect(sent.withLockedValue { $0 } == [[["id": "a", "online": true], ["id": "b", "online": true], ["id": "a", "online": false]]])
        // The next change starts the next batch.
        changes.add(["id": "c", "online": true], on: loop)
        loop.advanceTime(by: .milliseconds(100))
        #expect(sent.withLockedValue { $0 }.count == 2 && sent.withLockedValue { $0 }[1] == [["id": "c", "online": true]])
    }

    @Test func aChangeAddedWhileABatchIsSentLeavesInTheNextBatch() {
        let loop = EmbeddedEventLoop()
        let sent = NIOLockedValueBox<[[JSONValue]]>([])
        let changes = NIOLockedValueBox<PresenceChanges?>(nil)
        let batcher = PresenceChanges(delay: .milliseconds(100)) { batch in
            let first = sent.withLockedValue { sent in
                sent.append(batch)
                return sent.count == 1
            }
            // Another socket changes while the first batch is being handed over.
            if first { changes.withLockedValue { $0 }?.add(["id": "late"], on: loop) }
        }
        changes.withLockedValue { $0 = batcher }
        batcher.add(["id": "early"], on: loop)
        loop.advanceTime(by: .milliseconds(100))
        #expect(sent.withLockedValue { $0 } == [[["id": "early"]]])
        loop.advanceTime(by: .milliseconds(100))
        #expect(sent.withLockedValue { $0 } == [[["id": "early"]], [["id": "late"]]])
    }
}
