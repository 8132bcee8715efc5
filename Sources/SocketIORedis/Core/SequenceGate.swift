/// Puts a namespace's cluster messages back into one unbroken sequence before they are
/// delivered on this node.
///
/// Recoverable broadcasts carry consecutive numbers assigned by Redis in the same atomic
/// step that logs and publishes them, so every node receives them in that order. Pub/sub
/// delivers at most once: across a lost Redis connection some never arrive (the hole in
/// socket.io's Redis adapter, socket.io#4845). The gate notices the hole (a number beyond
/// the next) or is told of it (the latest number read after a reconnect), holds what
/// follows, and asks for the missing numbers from the log. Messages without a number
/// (volatile ones) keep their place in the stream. A pure state machine: inputs in,
/// actions out; the adapter performs them.
struct SequenceGate<Message> {
    enum Action {
        /// Deliver these, in order. A nil sequence: a message without a number.
        case deliver([(sequence: UInt64?, message: Message)])
        /// Read numbers `range` from the log, then call `fetched`.
        case fetch(ClosedRange<UInt64>)
    }

    /// The last number delivered; nil until the first.
    private(set) var lastDelivered: UInt64?
    /// The range asked for, while a fetch is under way.
    private(set) var fetching: ClosedRange<UInt64>?
    /// Messages that arrived during a fetch, in arrival order.
    private var held: [(sequence: UInt64?, message: Message)] = []

    init(lastDelivered: UInt64? = nil) {
        self.lastDelivered = lastDelivered
    }

    /// A message arrived from the subscription.
    mutating func received(_ message: Message, sequence: UInt64?) -> [Action] {
        if fetching != nil {
            held.append((sequence, message))
            return []
        }
        return admit([(sequence, message)])
    }

    /// The latest number Redis has issued, read after (re)subscribing: anything between
    /// the last delivered and it was published while this node was not listening.
    mutating func latest(_ sequence: UInt64) -> [Action] {
        guard fetching == nil, let last = lastDelivered, sequence > last else { return [] }
        fetching = (last + 1)...sequence
        return [.fetch((last + 1)...sequence)]
    }

    /// The log's answer to `fetch`: the entries it still holds in the range, in order. What
    /// it no longer holds is lost for good (trimmed, or Redis restarted empty); delivery
    /// goes on after the hole, and the numbers jump.
    mutating func fetched(_ entries: [(sequence: UInt64, message: Message)]) -> [Action] {
        guard let range = fetching else { return [] }
        fetching = nil
        var actions: [Action] = []
        let recovered = entries.filter { range.contains($0.sequence) && $0.sequence > (lastDelivered ?? 0) }
        if !recovered.isEmpty {
            actions.append(.deliver(recovered.map { ($0.sequence, $0.message) }))
            lastDelivered = recovered.last!.sequence
        }
        if (lastDelivered ?? 0) < range.upperBound { lastDelivered = range.upperBound }  // the rest is lost
        let waiting = held
        held = []
        actions += admit(waiting)
        return actions
    }

    /// The fetch failed (Redis away again): give up on the hole, as if the log had lost it.
    mutating func fetchFailed() -> [Action] {
        fetched([])
    }

    /// Delivers messages in order up to the first hole; holds the rest and asks for it.
    private mutating func admit(_ messages: [(sequence: UInt64?, message: Message)]) -> [Action] {
        var deliver: [(sequence: UInt64?, message: Message)] = []
        var actions: [Action] = []
        for (index, entry) in messages.enumerated() {
            if let sequence = entry.sequence, let last = lastDelivered {
                if sequence <= last { continue }  // already delivered (from the log)
                if sequence > last + 1 {
                    if !deliver.isEmpty { actions.append(.deliver(deliver)) }
                    fetching = (last + 1)...(sequence - 1)
                    held = Array(messages[index...])
                    actions.append(.fetch((last + 1)...(sequence - 1)))
                    return actions
                }
            }
            deliver.append(entry)
            if let sequence = entry.sequence { lastDelivered = sequence }
        }
        if !deliver.isEmpty { actions.append(.deliver(deliver)) }
        return actions
    }
}

extension SequenceGate: Sendable where Message: Sendable {}
