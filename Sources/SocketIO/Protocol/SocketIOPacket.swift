import EngineIO
import NIOCore

/// The packet types of Socket.IO protocol 5, by their wire digit.
public enum SocketIOPacketType: UInt8, Sendable {
    /// `0`: a client joins a namespace; the server's answer carries the socket id.
    case connect = 0
    /// `1`: either side leaves a namespace.
    case disconnect = 1
    /// `2`: an event, its name first in the data array.
    case event = 2
    /// `3`: the answer to an event that asked for one, by its id.
    case ack = 3
    /// `4`: the server refuses a namespace (`{message, data}`).
    case connectError = 4
    /// `5`: an event with binary attachments.
    case binaryEvent = 5
    /// `6`: an ack with binary attachments.
    case binaryAck = 6
}

/// One Socket.IO packet. Binary attachments live inside `data` as `.binary` values; the
/// codec turns them into placeholders and separate Engine.IO messages and back, so the
/// binary packet types never reach the layers above.
public struct SocketIOPacket: Sendable, Equatable {
    /// The packet type (never a binary one: the codec handles those).
    public var type: SocketIOPacketType
    /// The namespace, `/` by default.
    public var namespace: String
    /// The ack id of an event that asks for an answer, or of the answer.
    public var id: Int?
    /// The payload: an event's name and arguments, an ack's arguments, a CONNECT's auth.
    public var data: JSONValue?

    /// A packet with these fields.
    public init(type: SocketIOPacketType, namespace: String = "/", id: Int? = nil, data: JSONValue? = nil) {
        self.type = type
        self.namespace = namespace
        self.id = id
        self.data = data
    }
}

/// A packet encoded for Engine.IO: one text message, then one binary message per
/// attachment. Encoded once, it can be written to any number of sessions.
public struct EncodedSocketIOPacket: Sendable, Equatable {
    /// The packet's text part.
    public var text: EngineIOOutboundPacket
    /// The binary attachments, in order.
    public var attachments: [EngineIOOutboundPacket]
    /// The connection-state recovery offset the packet carries as its last argument; nil
    /// for packets that are not kept for recovery.
    public var sequence: UInt64?

    /// An encoded packet from its parts.
    public init(text: EngineIOOutboundPacket, attachments: [EngineIOOutboundPacket], sequence: UInt64? = nil) {
        self.text = text
        self.attachments = attachments
        self.sequence = sequence
    }
}

extension EncodedSocketIOPacket {
    /// The Socket.IO text of the packet, as written to the wire (after Engine.IO's type).
    public var encodedText: ByteBuffer {
        var bytes = text.bytes
        bytes.moveReaderIndex(forwardBy: 1)  // Engine.IO's `4`
        return bytes
    }

    /// The binary attachments, in order.
    public var encodedAttachments: [ByteBuffer] { attachments.map(\.bytes) }

    /// A packet from its encoded parts, as another node of a cluster sent them. With
    /// `offset`, `encodedText` is an event's text without its closing `]`, and the offset
    /// is appended as the last argument (a string), as `SocketIOPacketEncoder` would.
    public init(encodedText: ByteBuffer, attachments: [ByteBuffer], offset: UInt64? = nil) {
        let text = EngineIOOutboundPacket.textMessage { buffer in
            buffer.writeImmutableBuffer(encodedText)
            if let offset {
                buffer.writeStaticString(#",""#)
                buffer.writeString(String(offset))
                buffer.writeStaticString(#""]"#)
            }
        }
        self.init(text: text, attachments: attachments.map { .message(.binary($0)) }, sequence: offset)
    }
}

/// Encodes packets for Engine.IO.
public enum SocketIOPacketEncoder {
    /// Encodes `packet`: `<type>[<attachments>-][<namespace>,][<id>][<json>]`, with
    /// EVENT/ACK turned into BINARY_EVENT/BINARY_ACK when the data holds binary values.
    public static func encode(_ packet: SocketIOPacket) -> EncodedSocketIOPacket {
        var attachments: [EngineIOOutboundPacket] = []
        let text = EngineIOOutboundPacket.textMessage { buffer in
            var type = packet.type
            let hasBinary = packet.data?.containsBinary ?? false
            if hasBinary {
                if type == .event { type = .binaryEvent }
                if type == .ack { type = .binaryAck }
            }
            buffer.writeInteger(UInt8(ascii: "0") + type.rawValue)
            let attachmentCountIndex = buffer.writerIndex
            if packet.namespace != "/" {
                buffer.writeString(packet.namespace)
                buffer.writeInteger(UInt8(ascii: ","))
            }
            if let id = packet.id { buffer.writeString(String(id)) }
            if let data = packet.data {
                JSONSerializer.write(data, to: &buffer) { buffer, bytes in
                    buffer.writeStaticString(#"{"_placeholder":true,"num":"#)
                    buffer.writeString(String(attachments.count))
                    buffer.writeInteger(UInt8(ascii: "}"))
                    attachments.append(.message(.binary(bytes)))
                }
            }
            if hasBinary {
                // The count goes before the namespace, and is only known now.
                var rest = buffer.getSlice(at: attachmentCountIndex, length: buffer.writerIndex - attachmentCountIndex)!
                buffer.moveWriterIndex(to: attachmentCountIndex)
                buffer.writeString(String(attachments.count))
                buffer.writeInteger(UInt8(ascii: "-"))
                buffer.writeBuffer(&rest)
            }
        }
        return EncodedSocketIOPacket(text: text, attachments: attachments)
    }
}

/// Why a packet was refused. Any of these closes the connection, as the reference does.
public struct SocketIOParseError: Error, Equatable, CustomStringConvertible {
    /// What was wrong.
    public let reason: String
    public var description: String { reason }
}

/// Decodes the Engine.IO messages of one connection into packets, reassembling binary
/// packets from the attachments that follow them.
public struct SocketIOPacketDecoder: Sendable {
    /// The events a client may not emit, as in the reference parser.
    static let reservedEvents: Set<String> = ["connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"]
    /// The largest ack id accepted: beyond 2^53 JavaScript cannot represent it exactly.
    static let maxAckID = 9_007_199_254_740_991

    /// The most binary attachments one packet may announce.
    public var maxAttachments: Int
    /// The deepest JSON nesting accepted.
    public var maxDepth: Int

    private var pending: (packet: SocketIOPacket, expected: Int, buffers: [ByteBuffer])?

    /// A decoder with these limits.
    public init(maxAttachments: Int = 10, maxDepth: Int = JSONParser.defaultMaxDepth) {
        self.maxAttachments = maxAttachments
        self.maxDepth = maxDepth
    }

    /// Returns the next complete packet, or nil while attachments are still expected.
    public mutating func decode(_ message: EngineIOMessage) throws(SocketIOParseError) -> SocketIOPacket? {
        switch message {
        case .text(let text):
            guard pending == nil else { throw SocketIOParseError(reason: "got plaintext data when reconstructing a packet") }
            let (packet, attachments) = try decodeText(text)
            guard attachments > 0 else { return packet }
            pending = (packet, attachments, [])
            return nil
        case .binary(let bytes):
            guard var reconstruction = pending else {
                throw SocketIOParseError(reason: "got binary data when not reconstructing a packet")
            }
            reconstruction.buffers.append(bytes)
            guard reconstruction.buffers.count == reconstruction.expected else {
                pending = reconstruction
                return nil
            }
            pending = nil
            var packet = reconstruction.packet
            packet.data = try packet.data.map { value throws(SocketIOParseError) in
                try Self.fillPlaceholders(value, with: reconstruction.buffers)
            }
            return packet
        }
    }

    func decodeText(_ text: String) throws(SocketIOParseError) -> (SocketIOPacket, attachments: Int) {
        var text = text
        do {
            return try text.withUTF8 { bytes in try decode(bytes: bytes) }
        } catch let error as SocketIOParseError {
            throw error
        } catch {
            throw SocketIOParseError(reason: "invalid payload")
        }
    }

    private func decode(bytes: UnsafeBufferPointer<UInt8>) throws -> (SocketIOPacket, attachments: Int) {
        guard let first = bytes.first, first >= UInt8(ascii: "0"),
            let type = SocketIOPacketType(rawValue: first &- UInt8(ascii: "0"))
        else {
            throw SocketIOParseError(reason: "unknown packet type")
        }
        var index = 1
        var attachments = 0
        if type == .binaryEvent || type == .binaryAck {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: "-") { index += 1 }
            guard index < bytes.count, index > start, index - start <= 9,
                let count = Int(String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)),
                count >= 1
            else {
                throw SocketIOParseError(reason: "Illegal attachments")
            }
            guard count <= maxAttachments else { throw SocketIOParseError(reason: "too many attachments") }
            attachments = count
            index += 1
        }
        var namespace = "/"
        if index < bytes.count, bytes[index] == UInt8(ascii: "/") {
            let start = index
            while index < bytes.count, bytes[index] != UInt8(ascii: ",") { index += 1 }
            namespace = String(decoding: UnsafeBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
            if index < bytes.count { index += 1 }  // the comma
        }
        var id: Int?
        let digitsStart = index
        while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) { index += 1 }
        if index > digitsStart {
            guard index - digitsStart <= 16,
                let value = Int(String(decoding: UnsafeBufferPointer(rebasing: bytes[digitsStart..<index]), as: UTF8.self)),
                value <= Self.maxAckID
            else {
                throw SocketIOParseError(reason: "invalid ack id")
            }
            id = value
        }
        var data: JSONValue?
        if index < bytes.count {
            do {
                data = try JSONParser.parse(bytes: UnsafeBufferPointer(rebasing: bytes[index...]), maxDepth: maxDepth)
            } catch {
                throw SocketIOParseError(reason: "invalid payload")
            }
        }
        let packet = SocketIOPacket(
            type: type == .binaryEvent ? .event : type == .binaryAck ? .ack : type,
            namespace: namespace, id: id, data: data
        )
        guard Self.isValid(packet) else { throw SocketIOParseError(reason: "invalid payload") }
        return (packet, attachments)
    }

    static func isValid(_ packet: SocketIOPacket) -> Bool {
        switch packet.type {
        case .connect:
            return packet.data == nil || packet.data?.objectValue != nil
        case .disconnect:
            return packet.data == nil
        case .connectError:
            return packet.data?.stringValue != nil || packet.data?.objectValue != nil
        case .event, .binaryEvent:
            guard let args = packet.data?.arrayValue, let name = args.first else { return false }
            switch name {
            case .number: return true
            case .string(let event): return !reservedEvents.contains(event)
            default: return false
            }
        case .ack, .binaryAck:
            return packet.data?.arrayValue != nil
        }
    }

    private static func fillPlaceholders(_ value: JSONValue, with buffers: [ByteBuffer]) throws(SocketIOParseError) -> JSONValue {
        switch value {
        case .array(let values):
            var filled: [JSONValue] = []
            filled.reserveCapacity(values.count)
            for element in values { filled.append(try fillPlaceholders(element, with: buffers)) }
            return .array(filled)
        case .object(let object):
            if object["_placeholder"] == .bool(true) {
                guard let number = object["num"]?.intValue, buffers.indices.contains(number) else {
                    throw SocketIOParseError(reason: "illegal attachments")
                }
                return .binary(buffers[number])
            }
            var filled = JSONObject()
            for (key, member) in object { filled[key] = try fillPlaceholders(member, with: buffers) }
            return .object(filled)
        default:
            return value
        }
    }
}
