import NIOCore
import NIOWebSocket

/// Joins fragmented WebSocket messages (RFC 6455 §5.4) back together, within limits.
///
/// It lives inside the transport handler rather than as a handler of its own, so an idle
/// connection carries no extra pipeline context for it: a few words of state, and a buffer
/// only while a fragmented message is arriving.
struct WebSocketMessageAssembler {
    enum Failure: Error, Equatable {
        /// The fragments add up to more than `maxMessageSize`.
        case tooLarge
        /// More than `maxFragments` fragments.
        case tooManyFragments
        /// A continuation with nothing to continue, or a new message inside a fragmented one.
        case unexpectedFrame
    }

    /// A complete text or binary message.
    struct Message: Equatable {
        var opcode: WebSocketOpcode
        var data: ByteBuffer
        /// Its first frame had RSV1 set: permessage-deflate data, still to be inflated.
        var compressed = false
    }

    let maxMessageSize: Int
    let maxFragments: Int
    private var opcode: WebSocketOpcode?
    private var compressed = false
    private var buffer = ByteBuffer()
    private var fragments = 0

    init(maxMessageSize: Int, maxFragments: Int) {
        self.maxMessageSize = maxMessageSize
        self.maxFragments = maxFragments
    }

    /// Takes a text, binary or continuation frame; returns the message it completes, if any.
    /// After a failure the connection is to be closed; the partial message is dropped.
    mutating func receive(_ frame: WebSocketFrame) throws(Failure) -> Message? {
        switch frame.opcode {
        case .text, .binary:
            guard opcode == nil else { throw fail(.unexpectedFrame) }
            // The usual case, an unfragmented message: no copy.
            if frame.fin { return Message(opcode: frame.opcode, data: frame.unmaskedData, compressed: frame.rsv1) }
            opcode = frame.opcode
            compressed = frame.rsv1
            fragments = 0
            buffer.clear()
            try append(frame)
            return nil
        case .continuation:
            guard let opcode else { throw fail(.unexpectedFrame) }
            try append(frame)
            guard frame.fin else { return nil }
            let message = Message(opcode: opcode, data: buffer, compressed: compressed)
            self.opcode = nil
            buffer = ByteBuffer()  // gives the storage to the message
            return message
        default:
            preconditionFailure("only data frames are assembled")
        }
    }

    private mutating func append(_ frame: WebSocketFrame) throws(Failure) {
        fragments += 1
        guard fragments <= maxFragments else { throw fail(.tooManyFragments) }
        guard buffer.readableBytes + frame.length <= maxMessageSize else { throw fail(.tooLarge) }
        var data = frame.unmaskedData
        buffer.writeBuffer(&data)
    }

    private mutating func fail(_ failure: Failure) -> Failure {
        opcode = nil
        buffer = ByteBuffer()
        return failure
    }
}
