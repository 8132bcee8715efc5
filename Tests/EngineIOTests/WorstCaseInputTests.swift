import HTTPCommon
import NIOCore
import Testing

@testable import EngineIO

/// The Engine.IO structures a client's bytes feed, at the configured limits, shaped to be as
/// costly as possible; see the Socket.IO suite of the same name.
@Suite struct WorstCaseInputTests {
    static let limit = 1_000_000

    @Test func aPollingPayloadOfOneHundredAndFortyThousandPackets() {
        // The most packets a 1 MB POST can carry ("4a" and a separator each): split in one pass.
        let body = ByteBuffer(string: Array(repeating: "4a", count: Self.limit / 3).joined(separator: "\u{1e}"))
        let packets = EngineIOPayload.decode(body)
        #expect(packets.count == Self.limit / 3)
        #expect(packets.last == .message(.text("a")))
    }

    @Test func aQueryStringOfTenThousandParameters() {
        let query = (0..<10_000).map { "p\($0)=%41%42+\($0)" }.joined(separator: "&")
        let parsed = URLQuery.parameters(ofURI: "/socket.io/?" + query)
        #expect(parsed.count == 10_000)
        #expect(parsed["p9999"] == "AB 9999")
        // One key repeated: the first value wins, in one pass.
        let repeated = URLQuery.parameters(ofURI: "/?" + Array(repeating: "sid=x", count: 10_000).joined(separator: "&"))
        #expect(repeated == ["sid": "x"])
    }
}
