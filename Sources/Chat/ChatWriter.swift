import DequeModule

/// The one place messages are committed and broadcast from, so that broadcasts leave in id
/// order.
///
/// Inserts that arrive while a transaction is running wait and go together in the next
/// one (a group commit); each still gets its own outcome. New subscribers are caught up and
/// let into the live broadcast between two batches, so none of them can see id N+1 before N.
public actor ChatWriter {
    public typealias Broadcast = @Sendable (StoredMessage) -> Void

    private struct PendingInsert {
        let message: NewMessage
        let continuation: CheckedContinuation<Result<InsertOutcome, any Error>, Never>
    }

    private struct PendingSubscription {
        let after: Int64
        let deliver: @Sendable ([StoredMessage]) -> Void
        let continuation: CheckedContinuation<Result<Void, any Error>, Never>
    }

    private let store: any MessageStore
    private let broadcast: Broadcast
    private let maxBatch: Int
    private var inserts: [PendingInsert] = []
    private var subscriptions: [PendingSubscription] = []
    private var draining = false
    private var lastBroadcastID: Int64
    /// The latest broadcasts, so that most subscribers catch up without a query.
    private var recent = Deque<StoredMessage>()
    private let recentCapacity = 1024

    public init(store: any MessageStore, latestID: Int64, maxBatch: Int = 512, broadcast: @escaping Broadcast) {
        self.store = store
        self.broadcast = broadcast
        self.maxBatch = maxBatch
        self.lastBroadcastID = latestID
    }

    /// Stores a message (with the next group commit) and broadcasts it if it is new.
    public func insert(_ message: NewMessage) async -> Result<InsertOutcome, any Error> {
        await withCheckedContinuation { continuation in
            inserts.append(PendingInsert(message: message, continuation: continuation))
            startDraining()
        }
    }

    /// Sends a subscriber every message after `after` that was broadcast already, then
    /// `join` lets it into the live broadcast, both before the next broadcast leaves.
    public func subscribe(after: Int64, deliver: @escaping @Sendable ([StoredMessage]) -> Void) async -> Result<Void, any Error> {
        await withCheckedContinuation { continuation in
            subscriptions.append(PendingSubscription(after: after, deliver: deliver, continuation: continuation))
            startDraining()
        }
    }

    private func startDraining() {
        guard !draining else { return }
        draining = true
        Task { await self.drain() }
    }

    private func drain() async {
        while !inserts.isEmpty || !subscriptions.isEmpty {
            if !subscriptions.isEmpty {
                let batch = subscriptions
                subscriptions = []
                await catchUp(batch)
            }
            if !inserts.isEmpty {
                let batch = Array(inserts.prefix(maxBatch))
                inserts.removeFirst(batch.count)
                await commit(batch)
            }
        }
        draining = false
    }

    private func commit(_ batch: [PendingInsert]) async {
        do {
            let outcomes = try await store.insert(batch.map(\.message))
            for (pending, outcome) in zip(batch, outcomes) {
                if case .inserted(let message) = outcome {
                    broadcast(message)
                    lastBroadcastID = max(lastBroadcastID, message.id)
                    recent.append(message)
                    if recent.count > recentCapacity { recent.removeFirst() }
                }
                pending.continuation.resume(returning: .success(outcome))
            }
        } catch {
            for pending in batch { pending.continuation.resume(returning: .failure(error)) }
        }
    }

    private func catchUp(_ batch: [PendingSubscription]) async {
        for subscription in batch {
            do {
                var missed: [StoredMessage] = []
                if subscription.after < lastBroadcastID {
                    if let first = recent.first, first.id <= subscription.after + 1 {
                        missed = recent.filter { $0.id > subscription.after }
                    } else {
                        var after = subscription.after
                        while after < lastBroadcastID {
                            let page = try await store.messages(after: after, limit: 500).filter { $0.id <= lastBroadcastID }
                            guard let last = page.last else { break }
                            missed += page
                            after = last.id
                        }
                    }
                }
                subscription.deliver(missed)
                subscription.continuation.resume(returning: .success(()))
            } catch {
                subscription.continuation.resume(returning: .failure(error))
            }
        }
    }
}
