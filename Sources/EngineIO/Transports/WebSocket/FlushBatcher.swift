import NIOConcurrencyHelpers
import NIOCore

/// Flushes each WebSocket written to during an event-loop tick once, after everything
/// already queued on the loop has run: broadcasts that land together reach a client in one
/// `writev` instead of one system call each.
final class FlushBatcher: @unchecked Sendable {
    // @unchecked Sendable: `eventLoop` is immutable; `pending` and `scheduled` are touched
    // only on `eventLoop` (asserted), as are the connections' `flushPending` flags.

    let eventLoop: any EventLoop
    private var pending: [WebSocketConnection] = []
    /// The other list, swapped with `pending` each tick so neither is reallocated.
    private var flushing: [WebSocketConnection] = []
    private var scheduled = false
    /// Counted here and reported once per tick, not once per packet.
    var packetsWritten = 0
    var bytesWritten = 0

    private init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    private static let batchers = NIOLockedValueBox<[ObjectIdentifier: FlushBatcher]>([:])

    /// The batcher of `eventLoop`. Taken once per connection, not per write.
    static func forLoop(_ eventLoop: any EventLoop) -> FlushBatcher {
        batchers.withLockedValue { batchers in
            let key = ObjectIdentifier(eventLoop)
            if let batcher = batchers[key] { return batcher }
            let batcher = FlushBatcher(eventLoop: eventLoop)
            batchers[key] = batcher
            return batcher
        }
    }

    func needsFlush(_ connection: WebSocketConnection) {
        eventLoop.assertInEventLoop()
        if !connection.flushPending {
            connection.flushPending = true
            pending.append(connection)
        }
        if !scheduled {
            scheduled = true
            eventLoop.execute { self.flushAll() }
        }
    }

    private func flushAll() {
        scheduled = false
        EngineIOMetrics.packetsOut.increment(by: Int64(packetsWritten))
        EngineIOMetrics.bytesOut.increment(by: Int64(bytesWritten))
        packetsWritten = 0
        bytesWritten = 0
        swap(&pending, &flushing)
        for connection in flushing {
            connection.flushPending = false
            connection.flush()
        }
        flushing.removeAll(keepingCapacity: true)
    }
}
