import Foundation
import NIOCore
import Testing

@testable import Redis

@Suite struct RESPDecoderTests {
    static let elements = Int(ProcessInfo.processInfo.environment["RESP_ELEMENTS"] ?? "") ?? 100_000
    /// Decodes `text` fed in pieces of `chunk` bytes; returns every complete value.
    func decode(_ text: String, chunk: Int = .max) throws -> [RESPValue] {
        var decoder = RESPDecoder()
        var buffer = ByteBuffer()
        var values: [RESPValue] = []
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let end = min(offset + chunk, bytes.count)
            buffer.writeBytes(bytes[offset..<end])
            offset = end
            while let value = try decoder.decode(buffer: &buffer) { values.append(value) }
        }
        return values
    }

    @Test func everyTypeWhateverTheReads() throws {
        let text = "+OK\r\n-ERR wrong\r\n:42\r\n$5\r\nhe\r\no\r\n$-1\r\n*-1\r\n*0\r\n*2\r\n*1\r\n:1\r\n$0\r\n\r\n"
        let expected: [RESPValue] = [
            .simpleString("OK"), .error("ERR wrong"), .integer(42), .bulk("he\r\no"), .bulkString(nil), .array(nil), .array([]),
            .array([.array([.integer(1)]), .bulk("")]),
        ]
        for chunk in [1, 2, 3, 7, 1000] {
            #expect(try decode(text, chunk: chunk) == expected, "chunk \(chunk)")
        }
    }

    @Test func aLargeReplyInManyReadsCostsLinearTime() throws {
        // 100,000 elements in reads of 100 bytes: the decoder resumes where it stopped, and
        // keeps no slice of the read buffer (which would make every read copy it all).
        let text = "*\(Self.elements)\r\n" + String(repeating: "$3\r\nabc\r\n", count: Self.elements)
        let values = try decode(text, chunk: 100)
        #expect(values.count == 1)
        #expect(values[0].array?.count == Self.elements)
    }

    @Test func malformedInputIsRefused() {
        for text in ["?x\r\n", ":abc\r\n", "$5\r\nabcdefg\r\n", "$-2\r\n", "*-5\r\n", "+a\rb\n", String(repeating: "x", count: 70_000)] {
            #expect(throws: RESPDecodingError.self, "\(text.prefix(20))") { _ = try decode(text) }
        }
        let deep = String(repeating: "*1\r\n", count: 17) + ":1\r\n"
        #expect(throws: RESPDecodingError.self) { _ = try decode(deep) }
    }

    @Test func commandsAreArraysOfBulkStrings() {
        var buffer = ByteBuffer()
        RESPCommandEncoder.encode([ByteBuffer(string: "SET"), ByteBuffer(string: "k"), ByteBuffer(string: "v\r\n")], into: &buffer)
        #expect(String(buffer: buffer) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\nv\r\n\r\n")
    }
}
