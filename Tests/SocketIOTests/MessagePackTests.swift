import EngineIO
import NIOCore
import Testing

@testable import SocketIO

/// socket.io-msgpack-parser's format: the MessagePack values, the packets, the conversion
/// of the server's encodings for msgpack clients, and a msgpack client beside JSON ones.
@Suite struct MessagePackTests {
    func read(_ bytes: [UInt8], maxDepth: Int = JSONParser.defaultMaxDepth) throws -> JSONValue {
        try bytes.withUnsafeBytes { raw throws(MessagePackError) in try MessagePackReader.parse(bytes: raw, maxDepth: maxDepth) }
    }

    func object(_ members: [(String, JSONValue)]) -> JSONObject {
        var object = JSONObject()
        for (key, value) in members { object[key] = value }
        return object
    }

    func written(_ value: JSONValue) -> [UInt8] {
        var buffer = ByteBuffer()
        MessagePackWriter.write(value, to: &buffer)
        return Array(buffer.readableBytesView)
    }

    @Test func theSpecificationsExample() throws {
        let bytes: [UInt8] = [0x82, 0xA7] + Array("compact".utf8) + [0xC3, 0xA6] + Array("schema".utf8) + [0x00]
        #expect(try read(bytes) == ["compact": true, "schema": 0])
        #expect(written(["compact": true, "schema": 0]) == bytes)
    }

    @Test func everyKindRoundTripsInItsShortestForm() throws {
        let values: [(JSONValue, Int)] = [
            (.null, 1), (true, 1), (0, 1), (127, 1), (128, 2), (65_535, 3), (65_536, 5), (4_294_967_296, 9),
            (-1, 1), (-32, 1), (-33, 2), (-129, 3), (-40_000, 5), (-3_000_000_000, 9), (0.5, 9), (1e300, 9),
            (.string(String(repeating: "é", count: 15)), 31), (.string(String(repeating: "a", count: 300)), 303),
            (.string(String(repeating: "a", count: 70_000)), 70_005), (.binary(ByteBuffer(bytes: [1, 2, 3])), 5),
            (.binary(ByteBuffer(repeating: 7, count: 300)), 303),
            (.array((0..<20).map { JSONValue($0) }), 23), (.object(object((0..<20).map { (String($0), JSONValue($0)) })), 3 + 20 + 30 + 20),
        ]
        for (value, size) in values {
            let bytes = written(value)
            #expect(bytes.count == size, "\(value)")
            #expect(try read(bytes) == value)
        }
    }

    @Test func notepacksUndefinedReadsAsNullAndOtherExtensionsAreRefused() throws {
        #expect(try read([0x92, 0xD4, 0x00, 0x00, 0x01]) == [nil, 1])
        #expect(throws: MessagePackError.self) { try read([0xD4, 0xFF, 0x00]) }
        #expect(throws: MessagePackError.self) { try read([0xD6, 0xFF, 0, 0, 0, 0]) }  // timestamp
        #expect(throws: MessagePackError.self) { try read([0x81, 0x01, 0x02]) }  // an integer key
        #expect(throws: MessagePackError.self) { try read([0xA2, 0xC3, 0x28]) }  // not UTF-8
        #expect(throws: MessagePackError.self) { try read([0xC1]) }  // never used
        #expect(throws: MessagePackError.self) { try read([0x01, 0x02]) }  // trailing
        #expect(throws: MessagePackError.self) { try read([0xDB, 0xFF, 0xFF, 0xFF, 0xFF, 0x61]) }  // past the end
    }

    // MARK: Packets

    /// A packet as the JavaScript client sends it: `options` beside the fields, as notepack
    /// writes JavaScript's object.
    func clientPacket(_ fields: JSONObject) -> ByteBuffer {
        var buffer = ByteBuffer()
        MessagePackWriter.write(.object(fields), to: &buffer)
        return buffer
    }

    @Test func packetsFromTheClientsAreRead() throws {
        let event = try SocketIOPacket(
            messagePack: clientPacket(["type": 2, "data": ["chat message", "hi", .binary(ByteBuffer(bytes: [1, 2]))], "nsp": "/", "id": 5, "options": ["compress": true]])
        )
        #expect(event == SocketIOPacket(type: .event, namespace: "/", id: 5, data: ["chat message", "hi", .binary(ByteBuffer(bytes: [1, 2]))]))
        // python-socketio writes `id: None` and `data: None` where there are none.
        let connect = try SocketIOPacket(messagePack: clientPacket(["type": 0, "data": nil, "nsp": "/chat", "id": nil]))
        #expect(connect == SocketIOPacket(type: .connect, namespace: "/chat"))
        let ack = SocketIOPacket(type: .ack, namespace: "/", id: 9, data: [1.5, ["a": nil]])
        #expect(try SocketIOPacket(messagePack: ack.messagePack) == ack)
    }

    @Test(arguments: [
        ["type": 5, "data": ["e"], "nsp": "/"] as JSONObject,  // no binary types here
        ["type": 2, "data": ["e"]],  // no namespace
        ["type": 2, "data": ["e"], "nsp": 1],
        ["type": 2, "data": ["e"], "nsp": "/", "id": -1],
        ["type": 2, "data": ["e"], "nsp": "/", "id": 1.5],
        ["type": 2, "data": ["disconnect"], "nsp": "/"],  // a reserved name
        ["type": 2, "data": "e", "nsp": "/"],
        ["type": 1, "data": ["e"], "nsp": "/"],
        ["type": "2", "data": ["e"], "nsp": "/"],
    ])
    func badPacketsAreRefused(fields: JSONObject) {
        #expect(throws: SocketIOParseError.self) { try SocketIOPacket(messagePack: clientPacket(fields)) }
    }

    // MARK: Worst cases (1 MB messages, nesting 64)

    @Test func aMapOfEightyThousandKeysAndOneKeyRepeated() throws {
        let wide = object((0..<80_000).map { (String($0, radix: 36), JSONValue($0 % 10)) })
        let bytes = written(.object(wide))
        #expect(bytes.count < 1_000_000)
        #expect(try read(bytes).objectValue?.count == 80_000)
        // 100,000 times the same key: the last value, one member.
        var repeated: [UInt8] = [0xDF, 0x00, 0x01, 0x86, 0xA0]
        for index in 0..<100_000 { repeated += [0xA1, 0x6B] + written(JSONValue(index % 100)) }
        #expect(try read(repeated) == ["k": 99])
    }

    @Test func nestingAtTheLimitAndOneBeyond() throws {
        let atLimit = [UInt8](repeating: 0x91, count: 63) + [0x90]
        #expect(throws: Never.self) { try read(atLimit) }
        #expect(throws: MessagePackError.self) { try read([0x91] + atLimit) }
        // A million nested arrays: refused at the limit, not by the stack.
        #expect(throws: MessagePackError.self) { try read([UInt8](repeating: 0x91, count: 1_000_000)) }
    }

    @Test func lengthsThatLieAreRefusedBeforeAnythingIsReserved() throws {
        // Four billion elements claimed in five bytes.
        #expect(throws: MessagePackError.self) { try read([0xDD, 0xFF, 0xFF, 0xFF, 0xFF]) }
        #expect(throws: MessagePackError.self) { try read([0xDF, 0xFF, 0xFF, 0xFF, 0xFF, 0xA0, 0xC0]) }
        #expect(throws: MessagePackError.self) { try read([0xC6, 0xFF, 0xFF, 0xFF, 0xFF]) }
        // 150,000 elements and a 900 KB string: read whole.
        #expect(try read(written(.array((0..<150_000).map { JSONValue($0 % 128) }))).arrayValue?.count == 150_000)
        let long = String(repeating: "x", count: 900_000)
        #expect(try read(written(.string(long))) == .string(long))
    }

    // MARK: Conversion for msgpack clients

    @Test func aBroadcastIsConvertedOncePerEventLoop() throws {
        let transcoder = MessagePackTranscoder()
        let packet = SocketIOPacket(type: .event, namespace: "/", data: ["chat message", "hi", .binary(ByteBuffer(bytes: [9]))])
        let encoded = SocketIOPacketEncoder.encode(packet)
        #expect(encoded.attachments.count == 1)
        let first = try #require(transcoder.messagePack(of: encoded))
        #expect(transcoder.messagePack(of: encoded) == first)
        #expect(transcoder.conversions == 1)
        #expect(first.kind == .binary)
        #expect(try SocketIOPacket(messagePack: first.bytes) == packet)
        // Another packet with equal bytes is converted anew: identity, not equality.
        _ = transcoder.messagePack(of: SocketIOPacketEncoder.encode(packet))
        #expect(transcoder.conversions == 2)
    }

    @Test func aMsgpackClientAndAJSONClientShareARoom() async throws {
        let io = SocketIOServer(configuration: SocketIOConfiguration())
        io.sockets.onConnection { socket in
            socket.emit("welcome", .object(socket.handshake.auth))
            socket.on("join") { event in
                if case .string(let room)? = event.arguments.first { socket.join(room) }
                event.ack?()
            }
            socket.on("to room") { event in
                if case .string(let room)? = event.arguments.first { io.to(room).emit("in room", arguments: Array(event.arguments.dropFirst())) }
            }
        }
        let json = try await TestClient.webSocket(to: io)
        try await json.connect()
        _ = try await json.events(1)
        try await json.send(#"421["join","lobby"]"#)
        #expect(try await json.nextText() == "431[]")

        let packer = try await TestClient.webSocket(to: io)
        func send(_ packet: SocketIOPacket) async throws { try await packer.sendBinary(Array(packet.messagePack.readableBytesView)) }
        func receive() async throws -> SocketIOPacket {
            guard case .binary(let bytes) = try await packer.next() else { throw SocketIOParseError(reason: "not binary") }
            return try SocketIOPacket(messagePack: ByteBuffer(bytes: bytes))
        }
        try await send(SocketIOPacket(type: .connect, data: ["name": "ada"]))
        let answer = try await receive()
        #expect(answer.type == .connect && answer.data?.objectValue?["sid"]?.stringValue?.count == 20)
        #expect(try await receive() == SocketIOPacket(type: .event, data: ["welcome", ["name": "ada"]]))
        try await send(SocketIOPacket(type: .event, id: 1, data: ["join", "lobby"]))
        #expect(try await receive() == SocketIOPacket(type: .ack, id: 1, data: []))

        // From msgpack, binary inline, to a JSON client: as an attachment.
        try await send(SocketIOPacket(type: .event, data: ["to room", "lobby", "hi", .binary(ByteBuffer(bytes: [1, 2, 3]))]))
        #expect(try await json.nextText() == #"451-["in room","hi",{"_placeholder":true,"num":0}]"#)
        #expect(try await json.next() == .binary([1, 2, 3]))
        #expect(try await receive() == SocketIOPacket(type: .event, data: ["in room", "hi", .binary(ByteBuffer(bytes: [1, 2, 3]))]))
        // From JSON to the msgpack client.
        try await json.send(#"42["to room","lobby",{"n":1}]"#)
        #expect(try await receive() == SocketIOPacket(type: .event, data: ["in room", ["n": 1]]))
        _ = try await json.events(1)

        // A text packet from a msgpack client does not parse: the connection closes.
        try await packer.send("42[\"to room\",\"lobby\"]")
        #expect(try await packer.next() == .close(code: 1000))
    }
}
