import NIOConcurrencyHelpers
import NIOCore

/// What a broadcast with acknowledgements got back (`BroadcastOperator.emitWithAck`).
public struct BroadcastAcks: Sendable, Equatable {
    /// The clients' answers that came back in time, in the order they came.
    public var responses: [[JSONValue]]
    /// How many clients were sent the event, on every node that reported in time.
    public var expected: Int
    /// Every node reported how many clients it sent to, and every one of them answered.
    public var isComplete: Bool

    /// Collects the given answers and counts.
    public init(responses: [[JSONValue]], expected: Int, isComplete: Bool) {
        self.responses = responses
        self.expected = expected
        self.isComplete = isComplete
    }
}

/// Gathers a broadcast's acknowledgements: each node reports how many clients it sent the
/// event to (socket.io's `clientCountCallback`), then their answers arrive one by one. Done
/// when every node has reported and every client answered, or when the time is up.
public final class BroadcastAckCollector: Sendable {
    private struct State {
        var responses: [[JSONValue]] = []
        var expected = 0
        var reportsPending: Int
        var result: BroadcastAcks?
        var waiter: CheckedContinuation<BroadcastAcks, Never>?
    }

    private let state: NIOLockedValueBox<State>
    private let deadline: Task<Void, Never>

    /// `reports`: how many nodes will report a client count (this one included).
    public init(reports: Int, timeout: TimeAmount) {
        let state = NIOLockedValueBox(State(reportsPending: reports))
        self.state = state
        self.deadline = Task {
            try? await Task.sleep(for: .nanoseconds(timeout.nanoseconds))
            Self.finish(state) { BroadcastAcks(responses: $0.responses, expected: $0.expected, isComplete: false) }
        }
    }

    deinit { deadline.cancel() }

    /// A node sent the event to `count` clients.
    public func report(count: Int) {
        finishIfDone { state in
            state.expected += count
            state.reportsPending -= 1
        }
    }

    /// A client answered.
    public func add(_ response: [JSONValue]) {
        finishIfDone { $0.responses.append(response) }
    }

    /// The answers, once complete or at the deadline.
    public var result: BroadcastAcks {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLockedValue { state -> BroadcastAcks? in
                    if state.result == nil { state.waiter = continuation }
                    return state.result
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }

    private func finishIfDone(_ change: (inout State) -> Void) {
        Self.finish(state) { state in
            change(&state)
            guard state.reportsPending <= 0, state.responses.count >= state.expected else { return nil }
            return BroadcastAcks(responses: state.responses, expected: state.expected, isComplete: true)
        }
    }

    /// Sets the result, once, if `decide` gives one, and wakes the waiter.
    private static func finish(_ state: NIOLockedValueBox<State>, _ decide: (inout State) -> BroadcastAcks?) {
        let (result, waiter) = state.withLockedValue { state -> (BroadcastAcks?, CheckedContinuation<BroadcastAcks, Never>?) in
            guard state.result == nil, let result = decide(&state) else { return (nil, nil) }
            state.result = result
            defer { state.waiter = nil }
            return (result, state.waiter)
        }
        if let result, let waiter { waiter.resume(returning: result) }
    }
}
