import Testing

@testable import SocketIO

@Suite struct JSONTests {
    @Test func parsesEveryKindOfValue() throws {
        let value = try JSONParser.parse(#" {"a":[1,-2.5,3e2,true,false,null],"b":{"c":"d"},"":"\u00e9\n\"\\\/"} "#)
        #expect(value["a"] == [1, -2.5, 300, true, false, nil])
        #expect(value["b"]?["c"] == "d")
        #expect(value[""] == "é\n\"\\/")
    }

    @Test func keepsKeyOrderAndComparesWithoutIt() throws {
        let value = try JSONParser.parse(#"{"z":1,"a":2,"m":3}"#)
        #expect(value.objectValue?.keys == ["z", "a", "m"])
        #expect(value == ["a": 2, "m": 3, "z": 1])
        #expect(value.description == #"{"z":1,"a":2,"m":3}"#)
    }

    @Test func parsesNumbersExactlyOnBothPaths() throws {
        // Up to 15 digits without fraction or exponent: the integer path; the rest: strtod.
        let cases: [(String, Double)] = [
            ("0", 0), ("-0", -0.0), ("7", 7), ("-42", -42), ("999999999999999", 999_999_999_999_999),
            ("9007199254740993", 9_007_199_254_740_992), ("12.5", 12.5), ("1e3", 1000), ("1E3", 1000), ("-2.5e-3", -0.0025),
        ]
        for (text, expected) in cases {
            let value = try JSONParser.parse(text).numberValue
            #expect(value == expected, "\(text)")
            #expect(value?.sign == expected.sign, "\(text)")
        }
    }

    @Test func decodesSurrogatePairsAndRepairsLoneOnes() throws {
        #expect(try JSONParser.parse(#""\ud83d\ude00""#) == "😀")
        #expect(try JSONParser.parse(#""\ud83dx""#) == "\u{FFFD}x")
        #expect(try JSONParser.parse(#""\ude00""#) == "\u{FFFD}")
    }

    @Test func refusesInvalidJSON() {
        for text in ["", "{", "[1,]", "{\"a\":}", "01", "1.", "-", "tru", "\"\u{01}\"", "[1] 2", "{'a':1}", "\"\\x\"", "NaN"] {
            #expect(throws: JSONParseError.self, "\(text)") { try JSONParser.parse(text) }
        }
    }

    @Test func limitsNesting() throws {
        let deep = String(repeating: "[", count: 65) + String(repeating: "]", count: 65)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(deep) }
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        _ = try JSONParser.parse(ok)
        let hostile = String(repeating: "[", count: 100_000)
        #expect(throws: JSONParseError.self) { try JSONParser.parse(hostile) }
    }

    @Test func serializesAsJavaScriptDoes() {
        #expect(JSONValue.number(1).description == "1")
        #expect(JSONValue.number(-0.0).description == "0")
        #expect(JSONValue.number(1.5).description == "1.5")
        #expect(JSONValue.number(1e21).description == "1e+21")
        #expect(JSONValue.number(1e-7).description == "1e-7")
        #expect(JSONValue.number(.nan).description == "null")
        #expect(JSONValue.number(9_007_199_254_740_991).description == "9007199254740991")
        #expect(JSONValue.string("a\"b\\c\n\u{01}é/").description == #""a\"b\\c\n\u0001é/""#)
        #expect(JSONValue.array([]).description == "[]")
        #expect(JSONValue.object([:]).description == "{}")
    }

    @Test func roundTrips() throws {
        let text = #"[{"text":"héllo 😀","id":42,"nested":{"list":[null,true,0.25]}},"tail"]"#
        #expect(try JSONParser.parse(text).description == text)
    }
}
