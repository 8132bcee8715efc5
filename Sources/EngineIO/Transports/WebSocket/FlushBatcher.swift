import NIOCore

/// Flushes each WebSocket written to during an event-loop tick once, after everything
/// already queued on the loop has run: broadcasts that land together reach a client in one
/// `writev` instead of one system call each.
final class FlushBatcher: @unchecked Sendable {
    // @unchecked Sendable: a batcher serves the connections of one event loop (its key in
    // `EngineIOServer.flushBatchers`); `pending`, `scheduled` and the counters are touched
    // only on that loop (asserted), as are the connections' `flushPending` flags.

    private var pending: [WebSocketConnection] = []
    /// The other list, swapped with `pending` each tick so neither is reallocated.
    private var flushing: [WebSocketConnection] = []
    private var scheduled = false
    /// Counted here and reported once per tick, not once per packet.
    var packetsWritten = 0
    var bytesWritten = 0

    /// One per event loop and server: see `EngineIOServer.flushBatchers`.
    init() {}

    func needsFlush(_ connection: WebSocketConnection) {
        let eventLoop = connection.eventLoop
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
