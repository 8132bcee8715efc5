import NIOConcurrencyHelpers

/// The engine's open WebSockets, counted, and at most one task held until none is open.
///
/// A host such as Hummingbird ends a graceful stop once the task of every connection it
/// accepted has returned, and then the process may exit. A WebSocket's task returns at the
/// upgrade (a suspended task per idle connection would cost about 3.5 KiB each), so the stop
/// would not wait for the close frame the engine sends on the host's quiesce event. Instead
/// one connection's task at a time is held here while any WebSocket is open: the stop waits
/// for that one task, and so for every WebSocket to close.
final class OpenWebSockets: Sendable {
    private struct State {
        var count = 0
        /// The held task, with the token of its call.
        var held: (token: UInt64, continuation: CheckedContinuation<Void, Never>)?
        var nextToken: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())

    /// A WebSocket's transport is in place (its handler was added).
    func opened() {
        state.withLockedValue { $0.count += 1 }
    }

    /// A WebSocket's transport is gone (its handler was removed, as the channel closed).
    func closed() {
        let released = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.count -= 1
            guard state.count == 0 else { return nil }
            defer { state.held = nil }
            return state.held?.continuation
        }
        released?.resume()
    }

    /// Whether a task is held (for tests).
    var isHolding: Bool { state.withLockedValue { $0.held != nil } }

    /// Returns once no WebSocket is open; at once if none is, if another task is held
    /// already, or if the task is cancelled.
    func hold() async {
        let token = state.withLockedValue { state -> UInt64 in
            state.nextToken += 1
            return state.nextToken
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let held = state.withLockedValue { state -> Bool in
                    guard state.count > 0, state.held == nil, !Task.isCancelled else { return false }
                    state.held = (token, continuation)
                    return true
                }
                if !held { continuation.resume() }
            }
        } onCancel: {
            let released = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
                guard let held = state.held, held.token == token else { return nil }
                state.held = nil
                return held.continuation
            }
            released?.resume()
        }
    }
}
