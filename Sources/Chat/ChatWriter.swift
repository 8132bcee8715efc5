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

    private struct PendingInsert {
        let message: NewMessage
        let completion: InsertCompletion
    }

    private struct PendingSubscription {
        let after: Int64
        let deliver: @Sendable ([StoredMessage]) -> Void
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

    public init(store: any MessageStore, latestID: Int64, maxBatch: Int = 512, broadcast: @escaping Broadcast) {
        self.store = store
        self.broadcast = broadcast
        self.maxBatch = maxBatch
        self.state = BroadcastState(lastBroadcastID: latestID)
    }

    /// Queues a message for the next group commit; `completion` gets its outcome after
    /// it was broadcast (if new).
    public func insert(_ message: NewMessage, completion: @escaping InsertCompletion) {
        enqueue { $0.inserts.append(PendingInsert(message: message, completion: completion)) }
    }

    /// Sends a subscriber every message after `after` that was broadcast already, then lets
    /// `deliver` join it to the live broadcast, both before the next broadcast leaves.
    public func subscribe(after: Int64, deliver: @escaping @Sendable ([StoredMessage]) -> Void, completion: @escaping SubscribeCompletion) {
        enqueue { $0.subscriptions.append(PendingSubscription(after: after, deliver: deliver, completion: completion)) }
    }

    public func subscribe(after: Int64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) async -> Result<Void, any Error> {
        await withCheckedContinuation { continuation in subscribe(after: after, deliver: deliver) { continuation.resume(returning: $0) } }
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
            var stored: [StoredMessage] = []
            for outcome in outcomes {
                guard case .inserted(let message) = outcome else { continue }
                stored.append(message)
                state.lastBroadcastID = max(state.lastBroadcastID, message.id)
                state.recent.append(message)
                if state.recent.count > recentCapacity { state.recent.removeFirst() }
            }
            Self.inserted.increment(by: stored.count)
            Self.duplicates.increment(by: batch.count - stored.count)
            // The whole batch leaves together, in id order, before any of it is acked.
            broadcast(stored)
            for (pending, outcome) in zip(batch, outcomes) { pending.completion(.success(outcome)) }
        } catch {
            Self.failed.increment(by: batch.count)
            state.needsResync = true
            for pending in batch { pending.completion(.failure(error)) }
        }
    }

    struct ResyncPending: Error {}

    /// Broadcasts, in id order, the rows stored after the last broadcast one.
    private func resync() async {
        do {
            while true {
                let page = try await store.messages(after: state.lastBroadcastID, limit: 500)
                guard let last = page.last else { break }
                for message in page {
                    state.recent.append(message)
                    if state.recent.count > recentCapacity { state.recent.removeFirst() }
                }
                state.lastBroadcastID = last.id
                broadcast(page)
                if page.count < 500 { break }
            }
            state.needsResync = false
        } catch {
            // The database is still away: try again before the next batch.
        }
    }

    private func catchUp(_ batch: [PendingSubscription]) async {
        for subscription in batch {
            do {
                var missed: [StoredMessage] = []
                let last = state.lastBroadcastID
                if subscription.after < last {
                    if let first = state.recent.first, first.id <= subscription.after + 1 {
                        missed = state.recent.filter { $0.id > subscription.after }
                    } else {
                        var after = subscription.after
                        while after < last {
                            let page = try await store.messages(after: after, limit: 500).filter { $0.id <= last }
                            guard let final = page.last else { break }
                            missed += page
                            after = final.id
                        }
                    }
                }
                subscription.deliver(missed)
                subscription.completion(.success(()))
            } catch {
                subscription.completion(.failure(error))
            }
        }
    }
}
