import Foundation
import NIOCore
import Testing

@testable import SocketIO

/// Codable events: arguments decoded into a handler's types and replies encoded straight to
/// and from `JSONValue`, binary fields as attachments, and arguments that do not decode
/// refused on a defined path.
@Suite struct TypedEventTests {
    struct Position: Codable, Equatable, Sendable {
        var x: Int
        var y: Int
        var label: String?
    }

    struct Receipt: Codable, Equatable, Sendable {
        var id: Int64
        var at: [Int]
    }

    struct Photo: Codable, Equatable, Sendable {
        var name: String
        var bytes: Data
    }

    // MARK: The coders

    @Test func valuesEncodeAndDecodeWithoutJSONText() throws {
        let position = Position(x: 3, y: -4, label: nil)
        let encoded = try JSONValueEncoder().encode(position)
        #expect(encoded == ["x": 3, "y": -4])  // a nil optional is left out, as Foundation's coder does
        #expect(try JSONValueDecoder().decode(Position.self, from: encoded) == position)
        let nested: [String: [Position]] = ["a": [position, Position(x: 1, y: 2, label: "b")]]
        #expect(try JSONValueDecoder().decode([String: [Position]].self, from: JSONValueEncoder().encode(nested)) == nested)
    }

    @Test func dataTravelsAsBinaryAndDatesAsMilliseconds() throws {
        let photo = Photo(name: "dot", bytes: Data([1, 2, 3]))
        let encoded = try JSONValueEncoder().encode(photo)
        #expect(encoded["bytes"] == .binary(ByteBuffer(bytes: [1, 2, 3])))
        #expect(try JSONValueDecoder().decode(Photo.self, from: encoded) == photo)
        let date = Date(timeIntervalSince1970: 1_700_000_000.123)
        #expect(try JSONValueEncoder().encode(date) == .number(1_700_000_000_123))
    }

    @Test func whatJSONCannotCarryIsRefused() {
        #expect(throws: EncodingError.self) { try JSONValueEncoder().encode(Double.nan) }
        #expect(throws: EncodingError.self) { try JSONValueEncoder().encode(Int64.max) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder().decode(Int.self, from: .number(1.5)) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder().decode(Position.self, from: ["x": 1]) }
    }

    // MARK: Handlers

    func server() -> SocketIOServer {
        let io = SocketIOServer()
        io.sockets.onConnection { socket in
            socket.on("move") { (position: Position, ack: Ack<Receipt>) in
                ack(Receipt(id: 7, at: [position.x, position.y]))
            }
            socket.on("note") { (text: String, count: Int?) in
                try? socket.emit("noted", text, count ?? 0)
            }
            socket.on("photo") { (photo: Photo, ack: Ack<Int>) in
                ack(photo.bytes.count)
            }
            socket.on("ask") { (question: String) in
                Task {
                    let answer = try await socket.emitWithAck("question", question, replyAs: Position.self, timeout: .seconds(5))
                    try socket.emit("answered", answer)
                }
            }
        }
        return io
    }

    @Test func aHandlerTakesDecodedArgumentsAndATypedAck() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        try await client.send(#"421["move",{"x":3,"y":4}]"#)
        #expect(try await client.nextText() == #"431[{"id":7,"at":[3,4]}]"#)
        try await client.send(#"42["note","hello"]"#)  // a missing optional argument is nil
        #expect(try await client.events(1) == [["noted", "hello", 0]])
    }

    @Test func binaryFieldsArriveAsAttachments() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        try await client.send(#"451-2["photo",{"name":"dot","bytes":{"_placeholder":true,"num":0}}]"#)
        try await client.sendBinary([9, 8, 7])
        #expect(try await client.nextText() == "432[3]")
    }

    @Test func argumentsThatDoNotDecodeGetAnErrorAckAndNeverReachTheHandler() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        try await client.send(#"423["move",{"x":"three","y":4}]"#)
        let refusal = try await client.nextText()
        #expect(refusal.hasPrefix(#"433[{"error":"invalid arguments: argument 1: x: expected Int"#), "\(refusal)")
        try await client.send(#"424["move"]"#)
        #expect(try await client.nextText() == #"434[{"error":"invalid arguments: argument 1 is missing"}]"#)
        // Without an ack asked for: dropped, counted and logged; the connection goes on.
        try await client.send(#"42["note",5]"#)
        try await client.send(#"42["note","after"]"#)
        #expect(try await client.events(1) == [["noted", "after", 0]])
    }

    @Test func emitWithAckDecodesTheAnswer() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        try await client.send(#"42["ask","where?"]"#)
        let question = try await client.nextText()
        #expect(question.hasSuffix(#"["question","where?"]"#))
        let id = question.dropFirst(2).prefix { $0.isNumber }
        try await client.send(#"43\#(id)[{"x":1,"y":2,"label":"here"}]"#)
        #expect(try await client.events(1) == [["answered", ["x": 1, "y": 2, "label": "here"]]])
    }
}
