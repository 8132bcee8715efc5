import NIOCore

/// The seven Engine.IO packet types, by their wire digit.
public enum EngineIOPacketType: UInt8, Sendable, Hashable {
    case open = 0x30  // "0"
    case close = 0x31  // "1"
    case ping = 0x32  // "2"
    case pong = 0x33  // "3"
    case message = 0x34  // "4"
    case upgrade = 0x35  // "5"
    case noop = 0x36  // "6"
}

/// A message carried by an Engine.IO session: the payload of a `message` packet.
public enum EngineIOMessage: Sendable, Hashable {
    case text(String)
    case binary(ByteBuffer)
}

/// One decoded inbound packet.
///
/// Text packets keep their data as a `String`; a binary message keeps its bytes. Anything
/// that does not parse becomes `.invalid`, which the session answers with a "parse error"
/// close, as the reference server does.
public enum EngineIOInboundPacket: Sendable, Hashable {
    case open
    case close
    case ping(String)
    case pong(String)
    case message(EngineIOMessage)
    case upgrade
    case noop
    case invalid

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
/// A text packet holds its full wire form (type digit then data), which is at once the
/// WebSocket text frame and the polling payload segment. A binary message holds its raw
/// bytes: a WebSocket binary frame as is, `b` + base64 in a polling payload. Encoding once
/// lets a broadcast share one buffer across every recipient.
public struct EngineIOOutboundPacket: Sendable, Hashable {
    public enum Kind: Sendable, Hashable {
        case text
        case binary
    }

    public let kind: Kind
    public let bytes: ByteBuffer

    init(kind: Kind, bytes: ByteBuffer) {
        self.kind = kind
        self.bytes = bytes
    }

    /// A control packet with optional text data, such as `2`, `3probe` or `6`.
    static func control(_ type: EngineIOPacketType, _ data: String = "") -> EngineIOOutboundPacket {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(1 + data.utf8.count)
        buffer.writeInteger(type.rawValue)
        buffer.writeString(data)
        return EngineIOOutboundPacket(kind: .text, bytes: buffer)
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
        var buffer = ByteBuffer()
        buffer.writeInteger(EngineIOPacketType.message.rawValue)
        write(&buffer)
        return EngineIOOutboundPacket(kind: .text, bytes: buffer)
    }

    /// The data of a text packet (after its type digit), for inspection and tests.
    public var textData: String? {
        guard kind == .text else { return nil }
        return bytes.getString(at: bytes.readerIndex + 1, length: bytes.readableBytes - 1)
    }

    static let ping = EngineIOOutboundPacket.control(.ping)
    static let noop = EngineIOOutboundPacket.control(.noop)
    static let close = EngineIOOutboundPacket.control(.close)
    static let probePong = EngineIOOutboundPacket.control(.pong, "probe")
}
