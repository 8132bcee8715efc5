import NIOConcurrencyHelpers
import Testing

@testable import Chat

/// `ChatWriter` on its own, over a store whose every call the test controls: group commits,
/// id order, the resync after a lost COMMIT answer, subscribers let in between batches, and
/// an idle wait that suspends.
@Suite struct ChatWriterTests {
    /// A store in memory that can hold a commit until released, and fail one after storing
    /// it (a COMMIT whose answer is lost).
    final class Store: MessageStore, @unchecked Sendable {
        // @unchecked Sendable: every field is behind `lock`.
        private let lock = NIOLock()
        private var rows: [StoredMessage] = []
        private var gate: CheckedContinuation<Void, Never>?
        private var gateWatchers: [CheckedContinuation<Void, Never>] = []
        private var holdNextCommit = false
        private var loseNextCommitAnswer = false
        private(set) var batches: [[String]] = []

        func holdTheNextCommit() { lock.withLock { holdNextCommit = true } }
        func loseTheNextCommitAnswer() { lock.withLock { loseNextCommitAnswer = true } }
        func release() { lock.withLock { () -> CheckedContinuation<Void, Never>? in defer { gate = nil }; return gate }?.resume() }
        /// Returns once a commit is being held.
        func holding() async {
            await withCheckedContinuation { continuation in
                let held = lock.withLock { () -> Bool in
                    if gate == nil { gateWatchers.append(continuation) }
                    return gate != nil
                }
                if held { continuation.resume() }
            }
        }
        var committedBatches: [[String]] { lock.withLock { batches } }

        func migrate(_ migrations: [Migration]) async throws -> [Int] { [] }
        func latestID() async throws -> Int64 { lock.withLock { rows.last?.id ?? 0 } }
        func ping() async -> Bool { true }
        func shutdown() async {}

        func insert(_ batch: [NewMessage]) async throws -> [InsertOutcome] {
            if lock.withLock({ holdNextCommit }) {
                await withCheckedContinuation { continuation in
                    let watchers = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
                        holdNextCommit = false
                        gate = continuation
                        defer { gateWatchers = [] }
                        return gateWatchers
                    }
                    for watcher in watchers { watcher.resume() }
                }
            }
            return try lock.withLock {
                batches.append(batch.map(\.content))
                var outcomes: [InsertOutcome] = []
                for message in batch {
                    if let existing = rows.first(where: { $0.clientOffset == message.clientOffset }) {
                        outcomes.append(.duplicate(id: existing.id))
                        continue
                    }
                    let stored = StoredMessage(
                        id: Int64(rows.count + 1), clientOffset: message.clientOffset, content: message.content, username: nil, createdAt: ""
                    )
                    rows.append(stored)
                    outcomes.append(.inserted(stored))
                }
                if loseNextCommitAnswer {
                    loseNextCommitAnswer = false
                    throw LostAnswer()
                }
                return outcomes
            }
        }

        func messages(after id: Int64, limit: Int) async throws -> [StoredMessage] {
            lock.withLock { Array(rows.filter { $0.id > id }.prefix(limit)) }
        }

        func messages(before id: Int64, limit: Int) async throws -> [StoredMessage] {
            lock.withLock { Array(rows.filter { $0.id < id }.suffix(limit)) }
        }

        struct LostAnswer: Error {}
    }

    /// What the writer broadcast, and the outcomes its inserts got, in the order they came.
    final class Log: @unchecked Sendable {
        // @unchecked Sendable: every field is behind `lock`.
        private let lock = NIOLock()
        private var broadcasts: [[Int64]] = []
        private var events: [String] = []
        func broadcast(_ messages: [StoredMessage]) { lock.withLock { broadcasts.append(messages.map(\.id)); events.append("broadcast \(messages.map(\.id))") } }
        func note(_ event: String) { lock.withLock { events.append(event) } }
        var broadcastIDs: [[Int64]] { lock.withLock { broadcasts } }
        var all: [String] { lock.withLock { events } }
    }

    let store = Store()
    let log = Log()

    func writer(latestID: Int64 = 0) -> ChatWriter {
        let log = self.log
        return ChatWriter(store: store, latestID: latestID) { log.broadcast($0) }
    }

    func message(_ text: String) -> NewMessage { NewMessage(clientOffset: "offset-\(text)", content: text, username: nil) }

    /// Queues an insert now (the writer's order is the call order); the task ends with
    /// its outcome.
    func enqueue(_ text: String, into writer: ChatWriter) -> Task<Result<InsertOutcome, any Error>, Never> {
        let log = self.log
        let (outcome, resolve) = AsyncStream.makeStream(of: Result<InsertOutcome, any Error>.self)
        writer.insert(message(text)) { result in
            log.note("ack \(text)")
            resolve.yield(result)
            resolve.finish()
        }
        return Task {
            for await result in outcome { return result }
            preconditionFailure("the writer dropped a completion")
        }
    }

    /// Inserts and waits for the outcome.
    func insert(_ text: String, into writer: ChatWriter) async -> Result<InsertOutcome, any Error> {
        await enqueue(text, into: writer).value
    }

    @Test func insertsThatArriveDuringACommitGoTogetherInTheNextInOrder() async throws {
        let writer = writer()
        store.holdTheNextCommit()
        let first = enqueue("a", into: writer)
        await store.holding()
        // Five more arrive while "a" is being committed.
        let later = ["b", "c", "d", "e", "f"].map { enqueue($0, into: writer) }
        store.release()
        _ = await first.value
        for task in later { _ = await task.value }
        #expect(store.committedBatches == [["a"], ["b", "c", "d", "e", "f"]])  // one commit for the five
        #expect(log.broadcastIDs == [[1], [2, 3, 4, 5, 6]])
    }

    @Test func aBatchIsBroadcastBeforeAnyOfItIsAcked() async throws {
        let writer = writer()
        _ = await insert("a", into: writer)
        #expect(log.all == ["broadcast [1]", "ack a"])
    }

    @Test func aRetryIsAckedWithoutABroadcast() async throws {
        let writer = writer()
        _ = await insert("a", into: writer)
        let retry = await insert("a", into: writer)
        #expect(try retry.get() == .duplicate(id: 1))
        #expect(log.broadcastIDs == [[1]])
    }

    @Test func afterALostCommitAnswerTheStoredRowsLeaveBeforeAnythingNewer() async throws {
        let writer = writer()
        _ = await insert("a", into: writer)
        store.loseTheNextCommitAnswer()
        let lost = await insert("b", into: writer)
        #expect(throws: Store.LostAnswer.self) { try lost.get() }  // no ack: the client retries
        #expect(log.broadcastIDs == [[1]])
        _ = await insert("c", into: writer)
        // "b" was stored after all: found and broadcast first, then "c".
        #expect(log.broadcastIDs.flatMap { $0 } == [1, 2, 3])
        let retry = await insert("b", into: writer)
        #expect(try retry.get() == .duplicate(id: 2))
    }

    @Test func aSubscriberGetsExactlyWhatWasBroadcastSinceItsCursorThenJoins() async throws {
        let writer = writer()
        for text in ["a", "b", "c"] { _ = await insert(text, into: writer) }
        let handedOver = NIOLockedValueBox<[Int64]>([])
        let log = self.log
        try await writer.subscribe(after: 1) { missed in
            handedOver.withLockedValue { $0 = missed.map(\.id) }
            log.note("joined")
        }
        #expect(handedOver.withLockedValue { $0 } == [2, 3])
        _ = await insert("d", into: writer)
        #expect(log.all.suffix(3) == ["joined", "broadcast [4]", "ack d"])
    }

    @Test func aSubscriberAfterALostCommitAnswerIsHandedTheRowsFoundByTheResync() async throws {
        let writer = writer()
        store.loseTheNextCommitAnswer()
        _ = await insert("a", into: writer)
        // Nothing has come back from the store since: the next drain resyncs first, so the
        // subscriber sees "a".
        let handedOver = NIOLockedValueBox<[Int64]>([])
        try await writer.subscribe(after: 0) { missed in handedOver.withLockedValue { $0 = missed.map(\.id) } }
        #expect(handedOver.withLockedValue { $0 } == [1])
        #expect(log.broadcastIDs == [[1]])
    }

    @Test func waitingForIdleSuspendsUntilTheQueueIsEmpty() async throws {
        let writer = writer()
        await writer.waitUntilIdle()  // nothing queued: at once
        store.holdTheNextCommit()
        let pending = enqueue("a", into: writer)
        await store.holding()
        let idle = Task { await writer.waitUntilIdle() }
        try await Task.sleep(for: .milliseconds(20))
        #expect(log.all.isEmpty)  // still waiting on the commit
        store.release()
        await idle.value
        #expect(log.all == ["broadcast [1]", "ack a"])
        _ = await pending.value
        // Bounded: a writer that does not get idle is given up on.
        store.holdTheNextCommit()
        let stuck = enqueue("b", into: writer)
        await store.holding()
        await writer.waitUntilIdle(timeout: .milliseconds(50))
        #expect(!log.all.contains("ack b"))
        store.release()
        _ = await stuck.value
    }
}

/// Writers of several servers sharing one store (a cluster): each broadcasts to its own
/// clients every batch, its own and the others', in id order, once, whatever the order in
/// which announcements arrive, if they arrive at all.
@Suite struct ClusteredChatWriterTests {
    typealias Store = ChatWriterTests.Store
    typealias Log = ChatWriterTests.Log

    /// Announcements as one server published them, for the test to hand to others.
    final class Announcements: @unchecked Sendable {
        // @unchecked Sendable: every field is behind `lock`.
        private let lock = NIOLock()
        private var published: [(messages: [StoredMessage], previousID: Int64)] = []
        func add(_ messages: [StoredMessage], _ previousID: Int64) { lock.withLock { published.append((messages, previousID)) } }
        var all: [(messages: [StoredMessage], previousID: Int64)] { lock.withLock { published } }
    }

    let store = Store()

    func node(_ log: Log, _ announcements: Announcements = Announcements()) -> ChatWriter {
        ChatWriter(store: store, latestID: 0, publish: { announcements.add($0, $1) }, broadcast: { log.broadcast($0) })
    }

    func insert(_ text: String, into writer: ChatWriter) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            writer.insert(NewMessage(clientOffset: text, content: text, username: nil)) { continuation.resume(with: $0.map { _ in () }) }
        }
    }

    @Test func announcementsThatArriveOutOfOrderAreFilledFromTheStoreAndNeverRepeated() async throws {
        let (logA, logB, logC) = (Log(), Log(), Log())
        let (fromA, fromB) = (Announcements(), Announcements())
        let (a, b, c) = (node(logA, fromA), node(logB, fromB), node(logC))
        try await insert("a1", into: a)  // id 1, after 0
        b.received(fromA.all[0].messages, after: fromA.all[0].previousID)
        await b.waitUntilIdle()
        try await insert("b1", into: b)  // id 2, after 1
        #expect(logB.broadcastIDs == [[1], [2]])
        #expect(fromB.all.map(\.previousID) == [1])
        // C hears B's announcement before A's.
        c.received(fromB.all[0].messages, after: fromB.all[0].previousID)
        c.received(fromA.all[0].messages, after: fromA.all[0].previousID)
        await c.waitUntilIdle()
        #expect(logC.broadcastIDs.flatMap { $0 } == [1, 2])
        // A hears both, in order: the second follows what it broadcast.
        a.received(fromB.all[0].messages, after: fromB.all[0].previousID)
        await a.waitUntilIdle()
        #expect(logA.broadcastIDs == [[1], [2]])
    }

    @Test func aServerThatCommitsBehindOthersSendsTheirRowsFirstAndAnnouncesThemWithItsOwn() async throws {
        let (logA, logB) = (Log(), Log())
        let fromB = Announcements()
        let (a, b) = (node(logA), node(logB, fromB))
        try await insert("a1", into: a)  // id 1: its announcement has not reached B
        try await insert("b1", into: b)  // id 2, after 1: B reads 1 first
        #expect(logB.broadcastIDs.flatMap { $0 } == [1, 2])
        #expect(fromB.all.map { $0.messages.map(\.id) } == [[1, 2]] && fromB.all.map(\.previousID) == [0])
    }

    @Test func aLostAnnouncementIsFoundWhenTheClusterResumes() async throws {
        let (logA, logC) = (Log(), Log())
        let (a, c) = (node(logA), node(logC))
        try await insert("a1", into: a)
        try await insert("a2", into: a)
        await c.waitUntilIdle()
        #expect(logC.broadcastIDs.isEmpty)  // nothing announced to C
        c.resynchronize()
        await c.waitUntilIdle()
        #expect(logC.broadcastIDs.flatMap { $0 } == [1, 2])
        await c.resynchronizeNow()  // nothing new: nothing again
        #expect(logC.broadcastIDs.flatMap { $0 } == [1, 2])
    }

    @Test func aRetryOfAMessageADeadServerStoredIsBroadcastAndAnnouncedByTheServerThatAcksIt() async throws {
        let (logA, logB, logC) = (Log(), Log(), Log())
        let fromB = Announcements()
        let (a, b, c) = (node(logA), node(logB, fromB), node(logC))
        try await insert("x", into: a)  // stored by A, which dies before its announcement leaves
        try await insert("x", into: b)  // the client's retry, elsewhere: a duplicate, acked
        #expect(logB.broadcastIDs.flatMap { $0 } == [1])
        #expect(fromB.all.map { $0.messages.map(\.id) } == [[1]] && fromB.all.map(\.previousID) == [0])
        c.received(fromB.all[0].messages, after: fromB.all[0].previousID)
        await c.waitUntilIdle()
        #expect(logC.broadcastIDs.flatMap { $0 } == [1])
    }
}
