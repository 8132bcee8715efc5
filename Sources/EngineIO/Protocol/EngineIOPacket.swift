import NIOCore

/// The seven Engine.IO packet types, by their wire digit.
public enum EngineIOPacketType: UInt8, Sendable, Hashable {
    /// `0`: the handshake's answer, with the session's parameters.
    case open = 0x30  // "0"
    /// `1`: the session ends.
    case close = 0x31  // "1"
    /// `2`: the server's heartbeat (and the upgrade probe).
    case ping = 0x32  // "2"
    /// `3`: the answer to a ping.
    case pong = 0x33  // "3"
    /// `4`: a message for the layer above.
    case message = 0x34  // "4"
    /// `5`: the client commits an upgrade to WebSocket.
    case upgrade = 0x35  // "5"
    /// `6`: nothing; ends a polling request held open during an upgrade.
    case noop = 0x36  // "6"
}

/// A message carried by an Engine.IO session: the payload of a `message` packet.
public enum EngineIOMessage: Sendable, Hashable {
    /// A text message.
    case text(String)
    /// A binary message: its raw bytes.
    case binary(ByteBuffer)
}

/// One decoded inbound packet.
///
/// Text packets keep their data as a `String`; a binary message keeps its bytes. Anything
/// that does not parse becomes `.invalid`, which the session answers with a "parse error"
/// close, as the reference server does.
public enum EngineIOInboundPacket: Sendable, Hashable {
    /// An `open` packet (only ever sent by servers; a client's is ignored).
    case open
    /// The client closes the session.
    case close
    /// A ping, with its data (`probe` during an upgrade).
    case ping(String)
    /// A pong, with its data (the answer to the server's heartbeat).
    case pong(String)
    /// A message for the layer above.
    case message(EngineIOMessage)
    /// The client commits its upgrade.
    case upgrade
    /// Nothing.
    case noop
    /// Anything that does not parse.
    case invalid

    /// Decodes one WebSocket message: a binary one is a binary message as is, a text one a
    /// packet. Nil for text that is not UTF-8, which closes the WebSocket with 1007.
    init?(webSocketMessage data: ByteBuffer, binary: Bool) {
        if binary {
            self = .message(.binary(data))
        } else if let text = String(validating: data.readableBytesView, as: UTF8.self) {
            self.init(text: text[...])
        } else {
            return nil
        }
    }

    /// Decodes a text packet (a WebSocket text frame, or one part of a polling payload).
    public init(text: Substring) {
        guard let first = text.utf8.first, let type = EngineIOPacketType(rawValue: first) else {
            self = .invalid
            return
        }
        let data = text.dropFirst()
        switch type {
        case .open: self = .open
        case .close: self = .close
        case .ping: self = .ping(String(data))
        case .pong: self = .pong(String(data))
        case .message: self = .message(.text(String(data)))
        case .upgrade: self = .upgrade
        case .noop: self = .noop
        }
    }
}

/// One encoded outbound packet, ready for either transport.
///
/// A text packet's data is its full wire form (type digit then data), which is at once the
/// WebSocket text frame's payload and the polling payload segment. A binary message's data
/// is its raw bytes: a WebSocket binary frame as is, `b` + base64 in a polling payload.
///
/// The packet is kept as a complete WebSocket frame, the header in front of the data in the
/// same buffer. Encoding once lets a broadcast write that one buffer to every recipient's
/// socket as is: no header, allocation or copy per recipient, and one iovec per frame.
public struct EngineIOOutboundPacket: Sendable, Hashable {
    /// Whether a packet travels as text or as binary.
    public enum Kind: Sendable, Hashable {
        /// A text frame, or a plain segment of a polling payload.
        case text
        /// A binary frame, or a `b`-prefixed base64 segment of a polling payload.
        case binary
    }

    /// Whether the packet is text or binary.
    public let kind: Kind
    /// The unmasked server-to-client WebSocket frame: header, then the packet's data.
    let frame: ByteBuffer
    private let headerLength: UInt8

    /// Space left in front of a new packet's data for the longest frame header.
    static let headroom = 10

    /// The packet's data, without the frame header.
    public var bytes: ByteBuffer {
        frame.getSlice(at: frame.readerIndex + Int(headerLength), length: byteCount)!
    }

    /// The length of `bytes`.
    public var byteCount: Int { frame.readableBytes - Int(headerLength) }

    init(kind: Kind, bytes: ByteBuffer) {
        var buffer = Self.bufferWithHeadroom(capacity: bytes.readableBytes)
        buffer.writeImmutableBuffer(bytes)
        self.init(kind: kind, data: buffer)
    }

    /// `data`'s readable bytes must start at least `headroom` bytes into the buffer.
    private init(kind: Kind, data: ByteBuffer) {
        let frame = Self.frame(kind: kind, compressed: false, data: data)
        self.kind = kind
        self.frame = frame
        self.headerLength = UInt8(frame.readableBytes - data.readableBytes)
    }

    /// An unmasked, unfragmented frame of `kind` around `data`, whose readable bytes must start
    /// at least `headroom` bytes into the buffer: the header goes in front of them, in place.
    /// `compressed` sets RSV1, which marks a permessage-deflate message (RFC 7692).
    static func frame(kind: Kind, compressed: Bool, data: ByteBuffer) -> ByteBuffer {
        var frame = data
        let length = frame.readableBytes
        let headerLength = length < 126 ? 2 : (length <= 0xFFFF ? 4 : 10)
        let start = frame.readerIndex - headerLength
        precondition(start >= 0, "an outbound frame is built with headroom for its header")
        let first: UInt8 = 0x80 | (compressed ? 0x40 : 0) | (kind == .text ? 0x1 : 0x2)  // FIN, RSV1, opcode
        frame.setInteger(first, at: start)
        switch headerLength {
        case 2:
            frame.setInteger(UInt8(length), at: start + 1)
        case 4:
            frame.setInteger(UInt8(126), at: start + 1)
            frame.setInteger(UInt16(length), at: start + 2)
        default:
            frame.setInteger(UInt8(127), at: start + 1)
            frame.setInteger(UInt64(length), at: start + 2)
        }
        frame.moveReaderIndex(to: start)
        return frame
    }

    private static func bufferWithHeadroom(capacity: Int) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: headroom + capacity)
        buffer.moveWriterIndex(forwardBy: headroom)
        buffer.moveReaderIndex(forwardBy: headroom)
        return buffer
    }

    /// A control packet with optional text data, such as `2`, `3probe` or `6`.
    static func control(_ type: EngineIOPacketType, _ data: String = "") -> EngineIOOutboundPacket {
        var buffer = bufferWithHeadroom(capacity: 1 + data.utf8.count)
        buffer.writeInteger(type.rawValue)
        buffer.writeString(data)
        return EngineIOOutboundPacket(kind: .text, data: buffer)
    }

    /// Encodes a `message` packet. Call once per message, not once per recipient.
    public static func message(_ message: EngineIOMessage) -> EngineIOOutboundPacket {
        switch message {
        case .text(let text):
            return .control(.message, text)
        case .binary(let bytes):
            return EngineIOOutboundPacket(kind: .binary, bytes: bytes)
        }
    }

    /// Encodes a text `message` packet whose data `write` appends to the buffer, so a layer
    /// above can serialise straight into the wire buffer without an intermediate copy.
    public static func textMessage(_ write: (inout ByteBuffer) -> Void) -> EngineIOOutboundPacket {
        var buffer = bufferWithHeadroom(capacity: 64)
        buffer.writeInteger(EngineIOPacketType.message.rawValue)
        write(&buffer)
        return EngineIOOutboundPacket(kind: .text, data: buffer)
    }

    /// The data of a text packet (after its type digit), for inspection and tests.
    public var textData: String? {
        guard kind == .text else { return nil }
        return frame.getString(at: frame.readerIndex + Int(headerLength) + 1, length: byteCount - 1)
    }

    /// Whether `other` is this very encoding: the same bytes of the same buffer, not merely
    /// equal ones. A cache that holds a packet (so that its buffer cannot be freed and reused)
    /// can tell by this, at the cost of a comparison, that it is given that packet again: a
    /// broadcast written to each recipient on an event loop in turn.
    public func isSameEncoding(as other: EngineIOOutboundPacket) -> Bool {
        guard frame.readableBytes == other.frame.readableBytes else { return false }
        let mine = frame.withUnsafeReadableBytes { $0.baseAddress }
        return mine == other.frame.withUnsafeReadableBytes { $0.baseAddress }
    }

    static let ping = EngineIOOutboundPacket.control(.ping)
    static let noop = EngineIOOutboundPacket.control(.noop)
    static let close = EngineIOOutboundPacket.control(.close)
    static let probePong = EngineIOOutboundPacket.control(.pong, "probe")
}
