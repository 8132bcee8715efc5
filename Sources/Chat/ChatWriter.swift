import Atomics
import CoreMetrics
import DequeModule
import NIOConcurrencyHelpers

/// The one place messages are committed and broadcast from, so that broadcasts leave in id
/// order.
///
/// `insert` and `subscribe` queue work synchronously, so a client's messages are stored in
/// the order the client sent them. One drain task at a time empties the queue: inserts that
/// arrived while a transaction ran go together in the next one (a group commit), each with
/// its own outcome. New subscribers are caught up and let into the live broadcast between
/// two batches, so none of them can see id N+1 before N.
public final class ChatWriter: Sendable {
    /// Broadcasts newly stored messages, in id order.
    public typealias Broadcast = @Sendable ([StoredMessage]) -> Void
    public typealias InsertCompletion = @Sendable (Result<InsertOutcome, any Error>) -> Void
    public typealias SubscribeCompletion = @Sendable (Result<Void, any Error>) -> Void
    /// Hands a subscriber what it missed and lets it into the live broadcast; the writer
    /// waits for it before the next broadcast leaves.
    public typealias Deliver = @Sendable ([StoredMessage]) async -> Void

    private struct PendingInsert {
        let message: NewMessage
        let completion: InsertCompletion
    }

    private struct PendingSubscription {
        let after: Int64
        let deliver: Deliver
        let completion: SubscribeCompletion
    }

    private struct Queue {
        var inserts: [PendingInsert] = []
        var subscriptions: [PendingSubscription] = []
        var draining = false
    }

    /// What only the drain task touches (one drain task runs at a time, handed over
    /// through the `queue` lock's `draining` flag).
    private final class BroadcastState: @unchecked Sendable {
        var lastBroadcastID: Int64
        var recent = Deque<StoredMessage>()
        /// A commit failed: the database may hold rows that were never broadcast (a COMMIT
        /// can succeed and its answer still be lost). They are found and broadcast before
        /// anything newer, so no client's serverOffset can pass over them.
        var needsResync = false
        init(lastBroadcastID: Int64) { self.lastBroadcastID = lastBroadcastID }
    }

    private let store: any MessageStore
    private let broadcast: Broadcast
    private let maxBatch: Int
    private let queue = NIOLockedValueBox(Queue())
    private let state: BroadcastState
    private let recentCapacity = 1024
    private let broadcastHighWater: ManagedAtomic<Int64>

    public init(store: any MessageStore, latestID: Int64, maxBatch: Int = 512, broadcast: @escaping Broadcast) {
        self.store = store
        self.broadcast = broadcast
        self.maxBatch = maxBatch
        self.state = BroadcastState(lastBroadcastID: latestID)
        self.broadcastHighWater = ManagedAtomic(latestID)
    }

    /// The id of the last message broadcast. Every message broadcast after this is read
    /// has a higher id: a replay that starts from at most this id misses nothing.
    public var latestBroadcastID: Int64 { broadcastHighWater.load(ordering: .acquiring) }

    /// Queues a message for the next group commit; `completion` gets its outcome after
    /// it was broadcast (if new).
    public func insert(_ message: NewMessage, completion: @escaping InsertCompletion) {
        enqueue { $0.inserts.append(PendingInsert(message: message, completion: completion)) }
    }

    /// Between two broadcasts, hands `deliver` every message after `after` that was
    /// broadcast already, for it to send them and join the subscriber to the live
    /// broadcast; the next broadcast waits until it has. Fails, delivering nothing, while
    /// the database cannot say what it holds (after a failed commit): try again later.
    public func subscribe(after: Int64, deliver: @escaping Deliver, completion: @escaping SubscribeCompletion) {
        enqueue { $0.subscriptions.append(PendingSubscription(after: after, deliver: deliver, completion: completion)) }
    }

    public func subscribe(after: Int64, deliver: @escaping Deliver) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            subscribe(after: after, deliver: deliver) { continuation.resume(with: $0) }
        }
    }

    /// Waits until everything queued so far is committed, broadcast and acknowledged (or
    /// `timeout` passes): for a graceful shutdown.
    public func waitUntilIdle(timeout: Duration) async {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        while queue.withLockedValue({ $0.draining }), clock.now < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    private func enqueue(_ add: (inout Queue) -> Void) {
        let start = queue.withLockedValue { queue -> Bool in
            add(&queue)
            guard !queue.draining else { return false }
            queue.draining = true
            return true
        }
        if start { Task { await self.drain() } }
    }

    private func drain() async {
        while true {
            let (subscriptions, inserts) = queue.withLockedValue { queue -> ([PendingSubscription], [PendingInsert]) in
                let subscriptions = queue.subscriptions
                queue.subscriptions = []
                let inserts = Array(queue.inserts.prefix(maxBatch))
                queue.inserts.removeFirst(inserts.count)
                if subscriptions.isEmpty && inserts.isEmpty { queue.draining = false }
                return (subscriptions, inserts)
            }
            if subscriptions.isEmpty && inserts.isEmpty { return }
            if state.needsResync { await resync() }
            if !subscriptions.isEmpty { await catchUp(subscriptions) }
            if !inserts.isEmpty {
                if state.needsResync {
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

    private func commit(_ batch: [PendingInsert]) async {
        let started = ContinuousClock.now
        do {
            let outcomes = try await store.insert(batch.map(\.message))
            let elapsed = ContinuousClock.now - started
            Self.commitLatency.recordNanoseconds(elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000)
            Self.batchSize.record(batch.count)
            let stored = outcomes.compactMap { outcome -> StoredMessage? in
                guard case .inserted(let message) = outcome else { return nil }
                return message
            }
            Self.inserted.increment(by: stored.count)
            Self.duplicates.increment(by: batch.count - stored.count)
            // The whole batch leaves together, in id order, before any of it is acked.
            broadcastAndRemember(stored)
            for (pending, outcome) in zip(batch, outcomes) { pending.completion(.success(outcome)) }
        } catch {
            Self.failed.increment(by: batch.count)
            state.needsResync = true
            for pending in batch { pending.completion(.failure(error)) }
        }
    }

    private func broadcastAndRemember(_ messages: [StoredMessage]) {
        guard let last = messages.last else { return }
        for message in messages {
            state.recent.append(message)
            if state.recent.count > recentCapacity { state.recent.removeFirst() }
        }
        state.lastBroadcastID = max(state.lastBroadcastID, last.id)
        broadcast(messages)
        broadcastHighWater.store(state.lastBroadcastID, ordering: .releasing)
    }

    struct ResyncPending: Error {}

    /// Broadcasts, in id order, the rows stored after the last broadcast one.
    private func resync() async {
        do {
            while true {
                let page = try await store.messages(after: state.lastBroadcastID, limit: Self.pageSize)
                broadcastAndRemember(page)
                if page.count < Self.pageSize { break }
            }
            state.needsResync = false
        } catch {
            // The database is still away: try again before the next batch.
        }
    }

    /// Rows per query when the writer reads the store.
    static let pageSize = 500

    private func catchUp(_ batch: [PendingSubscription]) async {
        for subscription in batch {
            do {
                if subscription.after > state.lastBroadcastID && !state.needsResync {
                    // The subscriber read rows that were never broadcast (a lost COMMIT
                    // answer, or rows written by another process): they go out first.
                    state.needsResync = true
                    await resync()
                }
                // Until the writer knows what the database holds, nobody joins: a row it
                // has not broadcast yet could be neither replayed to them nor sent live.
                guard !state.needsResync else { throw ResyncPending() }
                var missed: [StoredMessage] = []
                let last = state.lastBroadcastID
                if subscription.after < last {
                    if let first = state.recent.first, first.id <= subscription.after + 1 {
                        missed = state.recent.filter { $0.id > subscription.after }
                    } else {
                        var after = subscription.after
                        while after < last {
                            let page = try await store.messages(after: after, limit: Self.pageSize).filter { $0.id <= last }
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
