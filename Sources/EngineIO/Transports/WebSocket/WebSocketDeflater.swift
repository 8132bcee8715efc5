import CompressNIO
import NIOCore

/// The permessage-deflate compressor and inflater of one event loop, shared by the
/// WebSockets on it that negotiated the extension (`DeflateAgreement`: no context takeover,
/// so no message depends on an earlier one and none needs state of its own connection).
///
/// A broadcast writes the same packet to every recipient on a loop one after the other; the
/// last compressed frame is kept, with the packet it came from, so that the packet is
/// compressed once per loop rather than once per recipient.
final class WebSocketDeflater: @unchecked Sendable {
    // @unchecked Sendable: kept in the server's per-loop registry and used only on that
    // loop, by the WebSocket connections that live there.

    /// Why an inflated message was refused.
    enum InflateFailure: Error, Equatable {
        /// It inflates past the limit (1009).
        case tooLarge
        /// It is not a valid deflate stream (1007).
        case corrupt
    }

    private var compressors: [Int32: ZlibCompressor] = [:]
    private var inflater: ZlibDecompressor?
    /// The last packet compressed (held, so that its buffer cannot be reused by another
    /// packet while it is kept) and its compressed frame, or nil if compressing did not
    /// make it shorter.
    private var last: (packet: EngineIOOutboundPacket, windowBits: Int32, compressed: ByteBuffer?)?
    /// How many packets were compressed (not taken from `last`), for tests and metrics.
    private(set) var compressions = 0

    /// The four bytes every flushed deflate block ends with, which RFC 7692 leaves off the wire.
    private static let tail: [UInt8] = [0x00, 0x00, 0xFF, 0xFF]

    /// `packet` as a compressed frame (RSV1 set), or nil if compressing would not shorten it.
    func compressedFrame(of packet: EngineIOOutboundPacket, windowBits: Int32) -> ByteBuffer? {
        if let last, last.windowBits == windowBits, last.packet.isSameEncoding(as: packet) {
            return last.compressed
        }
        let compressed = compress(packet, windowBits: windowBits)
        compressions += 1
        EngineIOMetrics.messagesDeflated.increment()
        last = (packet, windowBits, compressed)
        return compressed
    }

    private func compress(_ packet: EngineIOOutboundPacket, windowBits: Int32) -> ByteBuffer? {
        do {
            let compressor: ZlibCompressor
            if let existing = compressors[windowBits] {
                compressor = existing
                try compressor.reset()  // server_no_context_takeover: every message afresh
            } else {
                compressor = try ZlibCompressor(algorithm: .deflate, configuration: .init(windowSize: windowBits, memoryLevel: 8))
                compressors[windowBits] = compressor
            }
            var input = packet.bytes
            let length = input.readableBytes
            let headroom = EngineIOOutboundPacket.headroom
            var body = ByteBufferAllocator().buffer(capacity: headroom + compressor.maxSize(from: input))
            body.moveWriterIndex(forwardBy: headroom)
            body.moveReaderIndex(forwardBy: headroom)
            try compressor.deflate(from: &input, to: &body, flush: .sync)
            guard input.readableBytes == 0, body.readableBytes >= 4 else { return nil }
            body.moveWriterIndex(to: body.writerIndex - 4)  // 00 00 FF FF
            guard body.readableBytes < length else { return nil }
            return EngineIOOutboundPacket.frame(kind: packet.kind, compressed: true, data: body)
        } catch {
            return nil
        }
    }

    /// Inflates one compressed message, refusing it as soon as it passes `limit` bytes.
    func inflate(_ message: ByteBuffer, limit: Int) throws(InflateFailure) -> ByteBuffer {
        do {
            let inflater: ZlibDecompressor
            if let existing = self.inflater {
                inflater = existing
                try inflater.reset()  // client_no_context_takeover: every message afresh
            } else {
                inflater = try ZlibDecompressor(algorithm: .deflate, windowSize: 15)
                self.inflater = inflater
            }
            var input = message
            input.writeBytes(Self.tail)
            // Grows by doubling from a guess, to one byte past the limit at most: a message
            // that fills that is too large, and is refused without inflating the rest.
            var output = ByteBufferAllocator().buffer(capacity: min(limit + 1, max(4 * input.readableBytes, 1024)))
            while true {
                do {
                    try inflater.inflate(from: &input, to: &output)
                    break
                } catch let error as CompressNIOError where error == .bufferOverflow {
                    guard output.readableBytes <= limit else { throw InflateFailure.tooLarge }
                    output.reserveCapacity(minimumWritableBytes: min(limit + 1 - output.readableBytes, output.readableBytes))
                } catch let error as CompressNIOError where error == .inputBufferOverflow {
                    break  // all input read, and nothing more to write: the message is complete
                }
            }
            guard output.readableBytes <= limit else { throw InflateFailure.tooLarge }
            EngineIOMetrics.messagesInflated.increment()
            return output
        } catch let failure as InflateFailure {
            throw failure
        } catch {
            throw .corrupt
        }
    }
}
