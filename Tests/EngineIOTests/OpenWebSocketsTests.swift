import Testing

@testable import EngineIO

/// `OpenWebSockets`: what keeps a Hummingbird app's graceful stop from ending before the
/// engine's close frames are written, with one held task instead of one per connection.
@Suite struct OpenWebSocketsTests {
    /// Yields until `open` holds a task (the held task stores itself asynchronously).
    func untilHolding(_ open: OpenWebSockets) async {
        while !open.isHolding { await Task.yield() }
    }

    @Test func oneTaskIsHeldUntilNoneIsOpenAndTheOthersReturnAtOnce() async {
        let open = OpenWebSockets()
        await open.hold()  // none open: at once
        open.opened()
        open.opened()
        let held = Task { await open.hold() }
        await untilHolding(open)
        await open.hold()  // another task is held: at once
        open.closed()
        #expect(open.isHolding)  // one still open
        open.closed()
        await held.value
        #expect(!open.isHolding)
        // The next connection's task is held in turn.
        open.opened()
        let next = Task { await open.hold() }
        await untilHolding(open)
        open.closed()
        await next.value
    }

    @Test func aCancelledTaskIsLetGo() async {
        let open = OpenWebSockets()
        open.opened()
        let held = Task { await open.hold() }
        await untilHolding(open)
        held.cancel()
        await held.value
        #expect(!open.isHolding)
        // Cancelled before it asks: not held at all.
        let cancelled = Task {
            withUnsafeCurrentTask { $0?.cancel() }
            await open.hold()
        }
        await cancelled.value
        #expect(!open.isHolding)
    }
}
