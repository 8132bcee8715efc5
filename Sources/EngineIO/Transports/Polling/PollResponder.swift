import Atomics
import NIOCore

/// Answers one waiting polling GET. The HTTP handler that owns the request makes it; the
/// session calls it from its own event loop, and the handler writes on the channel's.
struct PollResponder: Sendable {
    /// Identifies the request, so that a late "connection closed" for an answered GET
    /// cannot close the session.
    let token: UInt64
    /// Answers with these packets; the future completes once the answer is written.
    let answer: @Sendable ([EngineIOOutboundPacket]) -> EventLoopFuture<Void>
    let reject: @Sendable () -> Void

    private static let tokens = ManagedAtomic<UInt64>(1)

    /// A token no other waiting GET of this process has.
    static func nextToken() -> UInt64 {
        tokens.loadThenWrappingIncrement(ordering: .relaxed)
    }
}
