import EngineIO
import NIOCore
import Testing

@testable import SocketIO

/// The examples of the socket.io-protocol specification (protocol 5), each encoded and
/// decoded.
@Suite struct SocketIOPacketCodecTests {
    private func text(_ packet: SocketIOPacket) -> String {
        SocketIOPacketEncoder.encode(packet).text.textData!
    }

    private func decode(_ text: String) throws -> SocketIOPacket? {
        var decoder = SocketIOPacketDecoder()
        return try decoder.decode(.text(text))
    }

    @Test func connect() throws {
        #expect(text(SocketIOPacket(type: .connect)) == "0")
        #expect(text(SocketIOPacket(type: .connect, namespace: "/admin", data: ["sid": "oSO0OpakMV_3jnilAAAA"])) == #"0/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}"#)
        #expect(try decode("0") == SocketIOPacket(type: .connect))
        #expect(try decode(#"0{"token":"123"}"#) == SocketIOPacket(type: .connect, data: ["token": "123"]))
        #expect(try decode("0/admin,") == SocketIOPacket(type: .connect, namespace: "/admin"))
        #expect(try decode("0/admin") == SocketIOPacket(type: .connect, namespace: "/admin"))
    }

    @Test func disconnect() throws {
        #expect(text(SocketIOPacket(type: .disconnect, namespace: "/admin")) == "1/admin,")
        #expect(try decode("1") == SocketIOPacket(type: .disconnect))
        #expect(try decode("1/admin,") == SocketIOPacket(type: .disconnect, namespace: "/admin"))
    }

    @Test func event() throws {
        #expect(text(SocketIOPacket(type: .event, data: ["foo"])) == #"2["foo"]"#)
        #expect(text(SocketIOPacket(type: .event, namespace: "/admin", data: ["bar"])) == #"2/admin,["bar"]"#)
        #expect(text(SocketIOPacket(type: .event, id: 12, data: ["foo"])) == #"212["foo"]"#)
        #expect(try decode(#"2["foo"]"#) == SocketIOPacket(type: .event, data: ["foo"]))
        #expect(try decode(#"2/admin,456["project:delete",123]"#) == SocketIOPacket(type: .event, namespace: "/admin", id: 456, data: ["project:delete", 123]))
        #expect(try decode(#"2[1,"numbered"]"#) == SocketIOPacket(type: .event, data: [1, "numbered"]))
    }

    @Test func ack() throws {
        #expect(text(SocketIOPacket(type: .ack, namespace: "/admin", id: 456, data: [])) == "3/admin,456[]")
        #expect(try decode(#"313["bar"]"#) == SocketIOPacket(type: .ack, id: 13, data: ["bar"]))
    }

    @Test func connectError() throws {
        #expect(text(SocketIOPacket(type: .connectError, namespace: "/admin", data: ["message": "Not authorized"])) == #"4/admin,{"message":"Not authorized"}"#)
        #expect(try decode(#"4{"message":"x"}"#) == SocketIOPacket(type: .connectError, data: ["message": "x"]))
        #expect(try decode(#"4"plain""#) == SocketIOPacket(type: .connectError, data: "plain"))
    }

    @Test func binaryEventIsEncodedWithPlaceholders() {
        let encoded = SocketIOPacketEncoder.encode(
            SocketIOPacket(type: .event, data: ["baz", .binary(ByteBuffer(bytes: [1, 2, 3, 4]))])
        )
        #expect(encoded.text.textData == #"51-["baz",{"_placeholder":true,"num":0}]"#)
        #expect(encoded.attachments == [.message(.binary(ByteBuffer(bytes: [1, 2, 3, 4])))])
        let namespaced = SocketIOPacketEncoder.encode(
            SocketIOPacket(type: .ack, namespace: "/admin", id: 456, data: [.binary(ByteBuffer(bytes: [3])), ["x": .binary(ByteBuffer(bytes: [4]))]])
        )
        #expect(namespaced.text.textData == #"62-/admin,456[{"_placeholder":true,"num":0},{"x":{"_placeholder":true,"num":1}}]"#)
        #expect(namespaced.attachments.count == 2)
    }

    @Test func binaryEventIsReassembled() throws {
        var decoder = SocketIOPacketDecoder()
        #expect(try decoder.decode(.text(#"52-["baz",{"_placeholder":true,"num":1},{"_placeholder":true,"num":0}]"#)) == nil)
        #expect(try decoder.decode(.binary(ByteBuffer(bytes: [0]))) == nil)
        let packet = try decoder.decode(.binary(ByteBuffer(bytes: [1])))
        #expect(packet == SocketIOPacket(type: .event, data: ["baz", .binary(ByteBuffer(bytes: [1])), .binary(ByteBuffer(bytes: [0]))]))
        // The decoder is ready for the next packet.
        #expect(try decoder.decode(.text(#"2["next"]"#)) == SocketIOPacket(type: .event, data: ["next"]))
    }

    @Test func binaryAckIsReassembled() throws {
        var decoder = SocketIOPacketDecoder()
        #expect(try decoder.decode(.text(#"61-/admin,456[{"_placeholder":true,"num":0}]"#)) == nil)
        #expect(try decoder.decode(.binary(ByteBuffer(bytes: [3]))) == SocketIOPacket(type: .ack, namespace: "/admin", id: 456, data: [.binary(ByteBuffer(bytes: [3]))]))
    }

    @Test func refusesMalformedPackets() {
        let bad = [
            "", "7", "x", "2", "2[]", "2{}", "2[null]", #"2["connect"]"#, #"2["disconnect"]"#, "2[\"a\"", "3{}", "1[1]",
            "0[1]", "4", "5-[\"a\"]", "5x-[\"a\"]", "50-[\"a\"]", "511-[\"a\"]", #"299999999999999999["a"]"#, "0\"str\"",
        ]
        for text in bad {
            var decoder = SocketIOPacketDecoder()
            #expect(throws: SocketIOParseError.self, "\(text)") { _ = try decoder.decode(.text(text)) }
        }
    }

    @Test func refusesOutOfOrderBinary() throws {
        var decoder = SocketIOPacketDecoder()
        #expect(throws: SocketIOParseError.self) { _ = try decoder.decode(.binary(ByteBuffer(bytes: [1]))) }
        #expect(try decoder.decode(.text(#"51-["a",{"_placeholder":true,"num":0}]"#)) == nil)
        #expect(throws: SocketIOParseError.self) { _ = try decoder.decode(.text(#"2["a"]"#)) }
        var outOfRange = SocketIOPacketDecoder()
        #expect(try outOfRange.decode(.text(#"51-["a",{"_placeholder":true,"num":5}]"#)) == nil)
        #expect(throws: SocketIOParseError.self) { _ = try outOfRange.decode(.binary(ByteBuffer(bytes: [1]))) }
    }
}
