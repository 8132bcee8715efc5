import ExtrasBase64
import NIOCore

/// The HTTP long-polling payload format of protocol 4: packets joined by the record
/// separator 0x1E, a binary message written as `b` followed by its base64.
public enum EngineIOPayload {
    static let separator: UInt8 = 0x1E
    static let binaryMarker: UInt8 = UInt8(ascii: "b")

    /// Joins packets into the body of a polling GET response.
    public static func encode(_ packets: [EngineIOOutboundPacket]) -> ByteBuffer {
        var size = max(packets.count - 1, 0)
        for packet in packets {
            switch packet.kind {
            case .text: size += packet.byteCount
            case .binary: size += 1 + (packet.byteCount + 2) / 3 * 4
            }
        }
        var body = ByteBuffer()
        body.reserveCapacity(size)
        for (index, packet) in packets.enumerated() {
            if index > 0 { body.writeInteger(separator) }
            switch packet.kind {
            case .text:
                body.writeImmutableBuffer(packet.bytes)
            case .binary:
                body.writeInteger(binaryMarker)
                body.writeBytes(Base64.encodeToBytes(bytes: packet.bytes.readableBytesView))
            }
        }
        return body
    }

    /// Splits the body of a polling POST into packets. A segment that does not parse
    /// decodes as `.invalid` and ends the list, as the reference parser stops at its
    /// first error.
    public static func decode(_ body: ByteBuffer) -> [EngineIOInboundPacket] {
        let bytes = body.readableBytesView
        guard !bytes.isEmpty else { return [.invalid] }
        var packets: [EngineIOInboundPacket] = []
        for segment in bytes.split(separator: separator, omittingEmptySubsequences: false) {
            let packet = decodeSegment(segment)
            packets.append(packet)
            if packet == .invalid { break }
        }
        return packets
    }

    private static func decodeSegment(_ segment: ByteBufferView.SubSequence) -> EngineIOInboundPacket {
        guard let first = segment.first else { return .invalid }
        if first == binaryMarker {
            // Padded or not: clients differ.
            guard let decoded = try? Base64.decode(bytes: segment.dropFirst(), options: .omitPaddingCharacter) else { return .invalid }
            var buffer = ByteBuffer()
            buffer.writeBytes(decoded)
            return .message(.binary(buffer))
        }
        // Invalid UTF-8 in a POST body is repaired rather than refused, as Node's
        // utf8 body decoding does.
        let text = String(decoding: segment, as: UTF8.self)
        return EngineIOInboundPacket(text: text[...])
    }
}
