import Atomics
import NIOCore
import NIOWebSocket

/// The write side of one WebSocket, as a session sees it. Its identity tells the session
/// which of its WebSockets (the active one or an upgrading one) an event came from.
final class WebSocketConnection: @unchecked Sendable {
    // @unchecked Sendable: `channel`, `eventLoop`, `batcher`, `deflate`, `writer` and
    // `closing` are immutable or atomic (the deflater itself is used on this loop only); `flushPending` and the writer's context are read and written only
    // on the channel's event loop, by `writeOnLoop`, `flush` and the loop's `FlushBatcher`.
    let channel: Channel
    /// The channel's event loop, kept: asking the channel costs a protocol call and a
    /// retain and release, on every write to every recipient of a broadcast.
    let eventLoop: any EventLoop
    private let batcher: FlushBatcher
    /// permessage-deflate as negotiated for this connection, if it was.
    let deflate: Deflate?
    /// Where encoded frames enter the pipeline, beneath NIO's frame encoder.
    let writer = EncodedFrameWriter()
    var flushPending = false
    private let closing = ManagedAtomic(false)

    /// How long a closing connection waits for the client to close its side.
    static let closeLinger: TimeAmount = .seconds(2)

    /// permessage-deflate on one connection: the loop's deflater, and what was agreed.
    struct Deflate {
        /// The deflater of the channel's event loop.
        let deflater: WebSocketDeflater
        /// The window of the messages sent (`DeflateAgreement.serverWindowBits`).
        let windowBits: Int32
        /// Messages shorter than this go uncompressed.
        let threshold: Int
    }

    /// `batcher` (and `deflate`'s deflater) are the ones of the channel's event loop.
    init(channel: Channel, batcher: FlushBatcher, deflate: Deflate? = nil) {
        self.channel = channel
        self.eventLoop = channel.eventLoop
        self.batcher = batcher
        self.deflate = deflate
    }

    /// Writes packets as frames; the loop's batcher flushes them with whatever else was
    /// written to this connection in the same tick. Safe from any thread: off the channel's
    /// event loop the write hops onto it.
    func write(_ packets: some Collection<EngineIOOutboundPacket>) {
        guard !packets.isEmpty else { return }
        if eventLoop.inEventLoop {
            writeOnLoop(packets)
        } else {
            let packets = Array(packets)
            eventLoop.execute { self.writeOnLoop(packets) }
        }
    }

    func write(_ packet: EngineIOOutboundPacket) {
        write(CollectionOfOne(packet))
    }

    private func writeOnLoop(_ packets: some Collection<EngineIOOutboundPacket>) {
        // Without the writer's context the channel is closed or closing: nothing to send.
        guard let context = writer.context else { return }
        for packet in packets {
            var frame = packet.frame
            if let deflate, packet.byteCount >= deflate.threshold,
                let compressed = deflate.deflater.compressedFrame(of: packet, windowBits: deflate.windowBits)
            {
                frame = compressed
            }
            context.write(NIOAny(frame), promise: nil)
            batcher.packetsWritten += 1
            batcher.bytesWritten += frame.readableBytes
        }
        batcher.needsFlush(self)
    }

    /// Sends what was written. Called by the batcher, on the channel's event loop.
    func flush() {
        writer.context?.flush()  // no context: the channel is closed, nothing to send
    }

    /// Runs `body` once everything written to this connection so far has been flushed,
    /// writes queued from other loops included: what the client sees next on another
    /// connection (a polling answer) then cannot overtake what it was sent here.
    func afterFlushing(_ body: @escaping @Sendable () -> Void) {
        let run: @Sendable () -> Void = {
            self.flush()
            body()
        }
        if eventLoop.inEventLoop { run() } else { eventLoop.execute(run) }
    }

    /// Sends a close frame with `code` and closes the connection, once.
    ///
    /// Only the output is shut at first: closing the socket outright while unread client
    /// data is queued makes the kernel send a reset, and the client would never read the
    /// close frame (a 1009 for an oversized message, say). The client closes its side on
    /// reading the frame; a client that does not is cut off after `closeLinger`.
    /// The future completes once the close frame is written (at once if it was sent before).
    @discardableResult
    func close(code: WebSocketErrorCode = .normalClosure) -> EventLoopFuture<Void> {
        let channel = self.channel
        guard closing.compareExchange(expected: false, desired: true, ordering: .relaxed).exchanged else {
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        return channel.eventLoop.flatSubmit {
            var data = channel.allocator.buffer(capacity: 2)
            data.write(webSocketErrorCode: code)
            let frame = WebSocketFrame(fin: true, opcode: .connectionClose, data: data)
            let written = channel.writeAndFlush(frame)
            written.whenComplete { _ in
                channel.close(mode: .output, promise: nil)
                channel.eventLoop.scheduleTask(in: Self.closeLinger) { channel.close(promise: nil) }
            }
            return written
        }
    }

    /// Whether a close frame has been sent: the connection takes no more data.
    var isClosing: Bool { closing.load(ordering: .relaxed) }
}
