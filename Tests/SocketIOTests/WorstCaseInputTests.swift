import EngineIO
import NIOCore
import Testing

@testable import SocketIO

/// Every structure that a client's bytes feed, at the configured limits (1 MB messages, 10
/// attachments, nesting 64), shaped to be as costly as possible. Each must cost time linear
/// (or n log n) in its input: these tests pin the shapes down and check the results; the
/// hostile scenario of `socketio-bench` measures the time, and the fuzzers (with
/// `-timeout`) turn any slow input into a finding.
@Suite struct WorstCaseInputTests {
    /// Just under the default `maxHttpBufferSize` of 1,000,000 bytes.
    static let limit = 1_000_000

    private func decode(_ text: String) throws -> SocketIOPacket? {
        var decoder = SocketIOPacketDecoder()
        return try decoder.decode(.text(text))
    }

    /// `{"0":0,"1":1,…,"zz":5,…}` with as many distinct keys as fit in `budget` bytes.
    private func objectWithDistinctKeys(budget: Int) -> (text: String, keys: Int) {
        var text = #"{"#
        var keys = 0
        while text.utf8.count < budget - 32 {
            if keys > 0 { text += "," }
            text += #""\#(String(keys, radix: 36))":\#(keys % 10)"#
            keys += 1
        }
        return (text + "}", keys)
    }

    @Test func anObjectWithEightyThousandDistinctKeys() throws {
        let (object, keys) = objectWithDistinctKeys(budget: Self.limit - 16)
        #expect(keys > 80_000)
        let packet = try #require(try decode(#"2["e","# + object + "]"))
        let parsed = try #require(packet.data?.arrayValue?[1].objectValue)
        #expect(parsed.count == keys)
        #expect(parsed[String(keys - 1, radix: 36)] == .number(Double((keys - 1) % 10)))
        #expect(parsed.keys.first == "0")
        // Comparing and re-encoding are linear too.
        #expect(JSONValue.object(parsed) == JSONValue.object(parsed))
        #expect(JSONValue.object(parsed).description.utf8.count == object.utf8.count)
    }

    @Test func theSameObjectNestedOneLevelDown() throws {
        let (object, keys) = objectWithDistinctKeys(budget: Self.limit - 32)
        let packet = try #require(try decode(#"2["e",{"inner":"# + object + "}]"))
        #expect(packet.data?.arrayValue?[1]["inner"]?.objectValue?.count == keys)
    }

    @Test func oneKeyRepeatedAHundredThousandTimesKeepsTheLastValue() throws {
        var text = #"{"#
        for index in 0..<100_000 { text += (index == 0 ? "" : ",") + #""k":\#(index)"# }
        let value = try JSONParser.parse(text + "}")
        #expect(value.objectValue?.count == 1)
        #expect(value["k"] == .number(99_999))
    }

    @Test func anArrayOfAHundredAndFiftyThousandNumbers() throws {
        let text = "[" + (0..<150_000).map(String.init).joined(separator: ",") + "]"
        #expect(try JSONParser.parse(text).arrayValue?.count == 150_000)
    }

    @Test func aStringOfAHundredAndFiftyThousandEscapes() throws {
        let text = "\"" + String(repeating: #"\u00e9"#, count: 150_000) + "\""
        #expect(try JSONParser.parse(text).stringValue?.count == 150_000)
    }

    @Test func aNumberWithNearlyAMillionDigits() throws {
        let digits = String(repeating: "7", count: Self.limit - 16)
        #expect(try JSONParser.parse(digits).numberValue == .infinity)
        #expect(try JSONParser.parse("0." + digits).numberValue.map { $0 > 0.7 && $0 < 0.8 } == true)
        #expect(try JSONParser.parse("1e" + String(repeating: "9", count: 100_000)).numberValue == .infinity)
    }

    @Test func nestingAtTheLimitAndOneBeyond() throws {
        let depth = JSONParser.defaultMaxDepth
        #expect(throws: Never.self) { try JSONParser.parse(String(repeating: "[", count: depth) + String(repeating: "]", count: depth)) }
        #expect(throws: JSONParseError.self) {
            try JSONParser.parse(String(repeating: "[", count: depth + 1) + String(repeating: "]", count: depth + 1))
        }
        // A megabyte of openers is refused at the 65th.
        #expect(throws: JSONParseError.self) { try JSONParser.parse(String(repeating: #"{"a":["#, count: Self.limit / 6)) }
    }

    @Test func placeholdersAtTheAttachmentLimitInAWideObject() throws {
        // Ten attachments, each placeholder among many sibling keys.
        var members = (0..<10).map { #""b\#($0)":{"_placeholder":true,"num":\#($0)}"# }
        members += (0..<50_000).map { #""p\#($0)":0"# }
        var decoder = SocketIOPacketDecoder()
        #expect(try decoder.decode(.text(#"510-["e",{"# + members.joined(separator: ",") + "}]")) == nil)
        for index in 0..<9 { #expect(try decoder.decode(.binary(ByteBuffer(bytes: [UInt8(index)]))) == nil) }
        let packet = try #require(try decoder.decode(.binary(ByteBuffer(bytes: [9]))))
        let object = try #require(packet.data?.arrayValue?[1].objectValue)
        #expect(object.count == 50_010)
        #expect(object["b9"] == .binary(ByteBuffer(bytes: [9])))
    }

    @Test func aLongNamespaceAndTheLongestAckID() throws {
        let namespace = "/" + String(repeating: "n", count: Self.limit - 32)
        #expect(try decode("0" + namespace + ",")?.namespace == namespace)
        #expect(try decode("29007199254740991[\"e\"]")?.id == 9_007_199_254_740_991)
        #expect(throws: SocketIOParseError.self) { try decode("2" + String(repeating: "9", count: Self.limit - 16) + "[\"e\"]") }
    }

    @Test func aSocketInAHundredThousandRooms() {
        // Room names can come from clients through an application's handlers.
        var memberships = RoomMemberships()
        for index in 0..<100_000 { memberships.join("room \(index)", from: UInt64(index)) }
        #expect(memberships.contains("room 99999"))
        #expect(BroadcastFilter(rooms: ["room 5"]).includes(memberships, at: 5))
        #expect(!BroadcastFilter(rooms: ["room 5"]).includes(memberships, at: 4))
        #expect(!BroadcastFilter(rooms: ["elsewhere"], except: ["room 7"]).includes(memberships, at: 9))
        for index in 0..<100_000 { memberships.leave("room \(index)") }
        #expect(memberships.isEmpty)
    }
}
