import NIOCore
import Testing

@testable import EngineIO

@Suite struct PacketCodecTests {
    @Test func decodesEveryTextPacketType() {
        #expect(EngineIOInboundPacket(text: "0") == .open)
        #expect(EngineIOInboundPacket(text: "1") == .close)
        #expect(EngineIOInboundPacket(text: "2probe") == .ping("probe"))
        #expect(EngineIOInboundPacket(text: "3") == .pong(""))
        #expect(EngineIOInboundPacket(text: "4hello") == .message(.text("hello")))
        #expect(EngineIOInboundPacket(text: "4") == .message(.text("")))
        #expect(EngineIOInboundPacket(text: "5") == .upgrade)
        #expect(EngineIOInboundPacket(text: "6") == .noop)
    }

    @Test func refusesUnknownTypesAndEmptyPackets() {
        #expect(EngineIOInboundPacket(text: "") == .invalid)
        #expect(EngineIOInboundPacket(text: "7") == .invalid)
        #expect(EngineIOInboundPacket(text: "x4") == .invalid)
        #expect(EngineIOInboundPacket(text: "€") == .invalid)
    }

    @Test func encodesMessagesOnce() {
        let text = EngineIOOutboundPacket.message(.text("héllo"))
        #expect(text.kind == .text)
        #expect(String(buffer: text.bytes) == "4héllo")
        let binary = EngineIOOutboundPacket.message(.binary(ByteBuffer(bytes: [1, 2, 3])))
        #expect(binary.kind == .binary)
        #expect(Array(binary.bytes.readableBytesView) == [1, 2, 3])
        let prebuilt = EngineIOOutboundPacket.textMessage { $0.writeString(#"2["x"]"#) }
        #expect(String(buffer: prebuilt.bytes) == #"42["x"]"#)
    }

    // The example payload of the engine.io-protocol specification, section "HTTP long-polling".
    @Test func encodesTheSpecificationPayload() {
        let payload = EngineIOPayload.encode([
            .message(.text("hello")),
            .message(.text("€")),
            .message(.binary(ByteBuffer(bytes: [1, 2, 3, 4]))),
        ])
        #expect(String(buffer: payload) == "4hello\u{1e}4€\u{1e}bAQIDBA==")
    }

    @Test func decodesTheSpecificationPayload() {
        let packets = EngineIOPayload.decode(ByteBuffer(string: "4hello\u{1e}4€\u{1e}bAQIDBA=="))
        #expect(packets == [
            .message(.text("hello")),
            .message(.text("€")),
            .message(.binary(ByteBuffer(bytes: [1, 2, 3, 4]))),
        ])
    }

    @Test func decodesControlPacketsInAPayload() {
        #expect(EngineIOPayload.decode(ByteBuffer(string: "3\u{1e}1")) == [.pong(""), .close])
    }

    @Test func stopsAtTheFirstInvalidSegment() {
        #expect(EngineIOPayload.decode(ByteBuffer(string: "4a\u{1e}9\u{1e}4b")) == [.message(.text("a")), .invalid])
        #expect(EngineIOPayload.decode(ByteBuffer(string: "")) == [.invalid])
        #expect(EngineIOPayload.decode(ByteBuffer(string: "4a\u{1e}")) == [.message(.text("a")), .invalid])
        #expect(EngineIOPayload.decode(ByteBuffer(string: "b!!!")) == [.invalid])
    }

    @Test func binaryPacketsRoundTripThroughPollingPayloadsAtEveryLength() {
        for length in 0..<40 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
            let body = EngineIOPayload.encode([.message(.binary(ByteBuffer(bytes: bytes)))])
            #expect(body.readableBytes == 1 + (length + 2) / 3 * 4)  // "b" and padded base64
            #expect(EngineIOPayload.decode(body) == [.message(.binary(ByteBuffer(bytes: bytes)))])
        }
        #expect(String(buffer: EngineIOPayload.encode([.message(.binary(ByteBuffer(string: "Ma")))])) == "bTWE=")
        // Padding is optional on the way in: clients differ.
        #expect(EngineIOPayload.decode(ByteBuffer(string: "bTQ==")) == [.message(.binary(ByteBuffer(string: "M")))])
        #expect(EngineIOPayload.decode(ByteBuffer(string: "bTQ")) == [.message(.binary(ByteBuffer(string: "M")))])
        #expect(EngineIOPayload.decode(ByteBuffer(string: "bT")) == [.invalid])
    }

    @Test func sessionIDsAreLongURLSafeAndDistinct() {
        let ids = (0..<1000).map { _ in RandomIdentifier.sessionID() }
        #expect(Set(ids).count == ids.count)
        for id in ids {
            #expect(id.utf8.count == 24)  // 144 random bits
            #expect(id.utf8.allSatisfy { byte in
                (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
            })
        }
    }
}
