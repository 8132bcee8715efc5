import Atomics
import DequeModule
import Metrics
import NIOConcurrencyHelpers

/// The one place messages are committed and broadcast from, so that broadcasts leave in id
/// order.
///
/// `insert` and `subscribe` queue work synchronously, in call order, so a client's messages
/// are stored in the order the client sent them. One task owns everything else (`Drainer`,
/// an actor) and empties the queue: inserts that arrived while a transaction ran go
/// together in the next one (a group commit), each with its own outcome. New subscribers
/// are caught up and let into the live broadcast between two batches, so none of them can
/// see id N+1 before N.
///
/// In a cluster (several servers on one store, `publish` set) the same holds on every
/// server, for every message, in one global order. The invariant: *a server broadcasts a
/// batch only when it follows the last id it broadcast, and otherwise reads the store after
/// that id.* It is sound because the store commits batches one at a time across servers
/// (`MessageStore.insertInCommitOrder`): ids rise in commit order, so a read of "everything
/// after N" can never be overtaken by a lower id committed later (the InnoDB hazard: ids
/// are given at insert, not at commit), and each batch carries the id committed just
/// before it, which tells whether it follows. Announcements that arrive late, twice, out of
/// order or never (Redis away, a server killed between commit and announcement) cost a
/// read, never a gap or a repeat; a server that catches up after Redis returns reads too.
public final class ChatWriter: Sendable {
    /// Broadcasts newly stored messages, in id order.
    public typealias Broadcast = @Sendable ([StoredMessage]) -> Void
    public typealias InsertCompletion = @Sendable (Result<InsertOutcome, any Error>) -> Void
    public typealias SubscribeCompletion = @Sendable (Result<Void, any Error>) -> Void
    /// Hands a subscriber what it missed and lets it into the live broadcast; the writer
    /// waits for it before the next broadcast leaves.
    public typealias Deliver = @Sendable ([StoredMessage]) async -> Void
    /// Tells the other servers of a batch this one committed, with the id committed just
    /// before it (see `received(_:after:)`).
    public typealias Publish = @Sendable (_ messages: [StoredMessage], _ previousID: Int64) -> Void

    struct PendingInsert {
        let message: NewMessage
        let completion: InsertCompletion
    }

    struct PendingSubscription {
        let after: Int64
        let deliver: Deliver
        let completion: SubscribeCompletion
    }

    /// Work handed over by `insert` and `subscribe`, taken by the drainer.
    struct Queue {
        var inserts: Deque<PendingInsert> = []
        var subscriptions: [PendingSubscription] = []
        /// Batches committed by other servers, as they were announced.
        var remote: [(messages: [StoredMessage], previousID: Int64)] = []
        var resyncRequested = false
        var resyncWaiters: [CheckedContinuation<Void, Never>] = []
        /// The drainer is at work (between taking a batch and finding the queue empty).
        var busy = false
        var idleWaiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    /// Rows per query when the writer reads the store.
    static let pageSize = 500

    private let queue = NIOLockedValueBox(Queue())
    private let wakeUp: AsyncStream<Void>.Continuation
    private let broadcastHighWater: ManagedAtomic<Int64>

    /// A writer. With `publish`, it is one of several servers sharing the store (a
    /// cluster): it commits in the store's shared commit order, announces each batch with
    /// `publish`, and broadcasts (to this server's clients) every batch in id order, its
    /// own and those the others announce (`received(_:after:)`); a hole in the
    /// announcements is filled from the store.
    public init(store: any MessageStore, latestID: Int64, maxBatch: Int = 512, publish: Publish? = nil, broadcast: @escaping Broadcast) {
        // A wake-up sent while the drainer is at work is kept (one is enough): it looks at
        // the queue again before it waits.
        let (wakeUps, wakeUp) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        self.wakeUp = wakeUp
        self.broadcastHighWater = ManagedAtomic(latestID)
        let drainer = Drainer(
            store: store, queue: queue, latestID: latestID, maxBatch: maxBatch, broadcast: broadcast, publish: publish,
            highWater: broadcastHighWater
        )
        Task { await drainer.run(wakeUps) }
    }

    deinit {
        wakeUp.finish()
    }

    /// The id of the last message broadcast. Every message broadcast after this is read
    /// has a higher id: a replay that starts from at most this id misses nothing.
    public var latestBroadcastID: Int64 { broadcastHighWater.load(ordering: .acquiring) }

    /// Queues a message for the next group commit; `completion` gets its outcome after
    /// it was broadcast (if new).
    public func insert(_ message: NewMessage, completion: @escaping InsertCompletion) {
        queue.withLockedValue { $0.inserts.append(PendingInsert(message: message, completion: completion)) }
        wakeUp.yield()
    }

    /// Another server committed `messages` (in id order), right after id `previousID`:
    /// they are broadcast here in turn. Announcements may arrive late, out of order or
    /// not at all: whatever does not follow the last broadcast id is read from the store.
    public func received(_ messages: [StoredMessage], after previousID: Int64) {
        queue.withLockedValue { $0.remote.append((messages, previousID)) }
        wakeUp.yield()
    }

    /// Reads the store for rows committed elsewhere that were never announced here (the
    /// link to the other servers came back after a loss).
    public func resynchronize() {
        queue.withLockedValue { $0.resyncRequested = true }
        wakeUp.yield()
    }

    /// Returns once the store has been read for rows committed elsewhere and they were
    /// broadcast here (or the store could not be read): for a client that says it holds
    /// an id this server has not broadcast yet.
    public func resynchronizeNow() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            queue.withLockedValue {
                $0.resyncRequested = true
                $0.resyncWaiters.append(continuation)
            }
            wakeUp.yield()
        }
    }

    /// Between two broadcasts, hands `deliver` every message after `after` that was
    /// broadcast already, for it to send them and join the subscriber to the live
    /// broadcast; the next broadcast waits until it has. Fails, delivering nothing, while
    /// the database cannot say what it holds (after a failed commit): try again later.
    public func subscribe(after: Int64, deliver: @escaping Deliver, completion: @escaping SubscribeCompletion) {
        queue.withLockedValue { $0.subscriptions.append(PendingSubscription(after: after, deliver: deliver, completion: completion)) }
        wakeUp.yield()
    }

    public func subscribe(after: Int64, deliver: @escaping Deliver) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            subscribe(after: after, deliver: deliver) { continuation.resume(with: $0) }
        }
    }

    /// Returns once everything queued so far is committed, broadcast and acknowledged (and
    /// nothing newer is being worked on), or `timeout` has passed: for a graceful
    /// shutdown, after the server has stopped taking messages. It suspends; it does not poll.
    public func waitUntilIdle(timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.waitUntilIdle() }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }

    /// Returns once the writer is idle, or when the calling task is cancelled.
    public func waitUntilIdle() async {
        let id = UInt64.random(in: 0...UInt64.max)
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let idle = queue.withLockedValue { queue -> Bool in
                    guard !Task.isCancelled,
                        queue.busy || !queue.inserts.isEmpty || !queue.subscriptions.isEmpty || !queue.remote.isEmpty || queue.resyncRequested
                    else { return true }
                    queue.idleWaiters[id] = continuation
                    return false
                }
                if idle { continuation.resume() }
            }
        } onCancel: {
            queue.withLockedValue { $0.idleWaiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// The writer's state and its only user: the last broadcast id, the recent messages, and
/// whether the database must be read again before anything newer leaves.
private actor Drainer {
    private let store: any MessageStore
    private let queue: NIOLockedValueBox<ChatWriter.Queue>
    private let maxBatch: Int
    private let broadcast: ChatWriter.Broadcast
    private let publish: ChatWriter.Publish?
    private let highWater: ManagedAtomic<Int64>

    private var lastBroadcastID: Int64
    private var recent = Deque<StoredMessage>()
    private let recentCapacity = 1024
    /// A commit failed: the database may hold rows that were never broadcast (a COMMIT can
    /// succeed and its answer still be lost). They are found and broadcast before anything
    /// newer, so no client's serverOffset can pass over them.
    private var needsResync = false

    init(
        store: any MessageStore, queue: NIOLockedValueBox<ChatWriter.Queue>, latestID: Int64, maxBatch: Int,
        broadcast: @escaping ChatWriter.Broadcast, publish: ChatWriter.Publish?, highWater: ManagedAtomic<Int64>
    ) {
        self.publish = publish
        self.store = store
        self.queue = queue
        self.lastBroadcastID = latestID
        self.maxBatch = maxBatch
        self.broadcast = broadcast
        self.highWater = highWater
    }

    func run(_ wakeUps: AsyncStream<Void>) async {
        for await _ in wakeUps { await drain() }
    }

    /// Takes work until the queue is empty, then lets the idle waiters go.
    private func drain() async {
        while true {
            let (subscriptions, inserts, remote, resyncRequested, resyncWaiters, idleWaiters) = queue.withLockedValue { queue in
                let subscriptions = queue.subscriptions
                queue.subscriptions = []
                let inserts = Array(queue.inserts.prefix(maxBatch))
                queue.inserts.removeFirst(inserts.count)
                let remote = queue.remote
                queue.remote = []
                let resyncRequested = queue.resyncRequested
                queue.resyncRequested = false
                let resyncWaiters = queue.resyncWaiters
                queue.resyncWaiters = []
                queue.busy = !subscriptions.isEmpty || !inserts.isEmpty || !remote.isEmpty || resyncRequested
                var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
                if !queue.busy { swap(&waiters, &queue.idleWaiters) }
                return (subscriptions, inserts, remote, resyncRequested, resyncWaiters, waiters.values)
            }
            guard !subscriptions.isEmpty || !inserts.isEmpty || !remote.isEmpty || resyncRequested else {
                for waiter in idleWaiters { waiter.resume() }
                return
            }
            if resyncRequested { needsResync = true }
            for batch in remote { receive(batch.messages, after: batch.previousID) }
            if needsResync { await resync() }
            for waiter in resyncWaiters { waiter.resume() }
            if !subscriptions.isEmpty { await catchUp(subscriptions) }
            if !inserts.isEmpty {
                if needsResync {
                    // Still unsure what the database holds: no ack, the clients retry.
                    Self.failed.increment(by: inserts.count)
                    for pending in inserts { pending.completion(.failure(ResyncPending())) }
                } else {
                    await commit(inserts)
                }
            }
        }
    }

    private static let inserted = Counter(label: "chat_inserts_total", dimensions: [("outcome", "inserted")])
    private static let duplicates = Counter(label: "chat_inserts_total", dimensions: [("outcome", "duplicate")])
    private static let failed = Counter(label: "chat_inserts_total", dimensions: [("outcome", "failed")])
    private static let commitLatency = Timer(label: "chat_db_commit_seconds")
    private static let batchSize = Recorder(label: "chat_db_batch_size")

    /// A batch another server committed after `previousID`: broadcast if it follows what
    /// was broadcast here; otherwise (an announcement lost or overtaken) the store is read.
    private func receive(_ messages: [StoredMessage], after previousID: Int64) {
        guard let last = messages.last, last.id > lastBroadcastID else { return }  // seen already
        guard previousID <= lastBroadcastID, !needsResync else {
            needsResync = true
            return
        }
        broadcastAndRemember(messages.filter { $0.id > lastBroadcastID })
    }

    private func commit(_ batch: [ChatWriter.PendingInsert]) async {
        let started = ContinuousClock.now
        do {
            let outcomes: [InsertOutcome]
            var previousID: Int64?
            if publish != nil {
                let committed = try await store.insertInCommitOrder(batch.map(\.message))
                (outcomes, previousID) = (committed.outcomes, committed.previousID)
            } else {
                outcomes = try await store.insert(batch.map(\.message))
            }
            let stored = outcomes.compactMap { outcome -> StoredMessage? in
                guard case .inserted(let message) = outcome else { return nil }
                return message
            }
            // In a cluster: what this step broadcasts, announced as following `before`.
            let before = lastBroadcastID
            var found: [StoredMessage] = []
            if let previousID, previousID > lastBroadcastID || stored.count < batch.count {
                // Others committed before us and their announcements are not in yet, or a
                // retry found its message stored already, by a server that may have died
                // before announcing it: what the store holds goes out first, ours with it.
                needsResync = true
                found = await resync()
                guard !needsResync else { throw ResyncPending() }  // stored: the retries get acked
            }
            let elapsed = ContinuousClock.now - started
            Self.commitLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            Self.batchSize.record(batch.count)
            Self.inserted.increment(by: stored.count)
            Self.duplicates.increment(by: batch.count - stored.count)
            // The whole batch leaves together, in id order, before any of it is acked.
            let own = stored.filter { $0.id > lastBroadcastID }
            broadcastAndRemember(own)
            if let publish, !(found.isEmpty && own.isEmpty) { publish(found + own, before) }
            for (pending, outcome) in zip(batch, outcomes) { pending.completion(.success(outcome)) }
        } catch {
            Self.failed.increment(by: batch.count)
            needsResync = true
            for pending in batch { pending.completion(.failure(error)) }
        }
    }

    private func broadcastAndRemember(_ messages: [StoredMessage]) {
        guard let last = messages.last else { return }
        for message in messages {
            recent.append(message)
            if recent.count > recentCapacity { recent.removeFirst() }
        }
        lastBroadcastID = max(lastBroadcastID, last.id)
        broadcast(messages)
        highWater.store(lastBroadcastID, ordering: .releasing)
    }

    /// Broadcasts, in id order, the rows stored after the last broadcast one.
    /// Returns what it broadcast.
    @discardableResult
    private func resync() async -> [StoredMessage] {
        var found: [StoredMessage] = []
        do {
            while true {
                let page = try await store.messages(after: lastBroadcastID, limit: ChatWriter.pageSize)
                broadcastAndRemember(page)
                found += page
                if page.count < ChatWriter.pageSize { break }
            }
            needsResync = false
        } catch {
            // The database is still away: try again before the next batch.
        }
        return found
    }

    private func catchUp(_ batch: [ChatWriter.PendingSubscription]) async {
        for subscription in batch {
            do {
                if subscription.after > lastBroadcastID && !needsResync {
                    // The subscriber read rows that were never broadcast (rows written by
                    // another process): they go out first.
                    needsResync = true
                    await resync()
                }
                // Until the writer knows what the database holds, nobody joins: a row it
                // has not broadcast yet could be neither replayed to them nor sent live.
                guard !needsResync else { throw ResyncPending() }
                var missed: [StoredMessage] = []
                let last = lastBroadcastID
                if subscription.after < last {
                    if let first = recent.first, first.id <= subscription.after + 1 {
                        missed = recent.filter { $0.id > subscription.after }
                    } else {
                        var after = subscription.after
                        while after < last {
                            let page = try await store.messages(after: after, limit: ChatWriter.pageSize).filter { $0.id <= last }
                            guard let final = page.last else { break }
                            missed += page
                            after = final.id
                        }
                    }
                }
                await subscription.deliver(missed)
                subscription.completion(.success(()))
            } catch {
                subscription.completion(.failure(error))
            }
        }
    }
}

/// An insert or subscription refused while the writer does not know what the database
/// holds (after a failed commit); the client retries.
struct ResyncPending: Error {}
