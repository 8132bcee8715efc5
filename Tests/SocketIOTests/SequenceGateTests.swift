import NIOCore
import Testing

@testable import SocketIO
@testable import SocketIORedis

/// The gate that turns a lossy subscription back into one unbroken sequence, and the
/// message format between nodes.
@Suite struct SequenceGateTests {
    typealias Gate = SequenceGate<String>

    /// What the gate delivered, as `number:message` (`-` for no number), and what it fetched.
    func describe(_ actions: [Gate.Action]) -> [String] {
        actions.map { action in
            switch action {
            case .deliver(let messages): messages.map { "\($0.sequence.map(String.init) ?? "-"):\($0.message)" }.joined(separator: " ")
            case .fetch(let range): "fetch \(range.lowerBound)...\(range.upperBound)"
            }
        }
    }

    @Test func consecutiveNumbersPassStraightThrough() {
        var gate = Gate()
        #expect(describe(gate.received("a", sequence: 7)) == ["7:a"])
        #expect(describe(gate.received("b", sequence: 8)) == ["8:b"])
        #expect(describe(gate.received("v", sequence: nil)) == ["-:v"])
        #expect(describe(gate.received("old", sequence: 8)) == [])  // a duplicate
    }

    @Test func aHoleIsFilledFromTheLogBeforeAnythingAfterItIsDelivered() {
        var gate = Gate(lastDelivered: 4)
        #expect(describe(gate.received("h", sequence: 7)) == ["fetch 5...6"])
        #expect(describe(gate.received("v", sequence: nil)) == [])  // held: it came after 7
        #expect(describe(gate.received("i", sequence: 8)) == [])
        #expect(describe(gate.fetched([(5, "e"), (6, "f")])) == ["5:e 6:f", "7:h -:v 8:i"])
        #expect(gate.lastDelivered == 8 && gate.fetching == nil)
    }

    @Test func whatTheLogLostIsSkippedAndDeliveryGoesOn() {
        var gate = Gate(lastDelivered: 4)
        _ = gate.received("h", sequence: 9)
        #expect(describe(gate.fetched([(6, "f")])) == ["6:f", "9:h"])  // 5, 7 and 8 are gone
        _ = gate.received("z", sequence: 20)
        #expect(describe(gate.fetchFailed()) == ["20:z"])  // Redis away again: give up on it
        #expect(gate.lastDelivered == 20)
    }

    @Test func aSecondHoleAmongTheHeldMessagesIsFetchedInTurn() {
        var gate = Gate(lastDelivered: 1)
        _ = gate.received("c", sequence: 3)
        _ = gate.received("f", sequence: 6)
        #expect(describe(gate.fetched([(2, "b")])) == ["2:b", "3:c", "fetch 4...5"])
        #expect(describe(gate.fetched([(4, "d"), (5, "e")])) == ["4:d 5:e", "6:f"])
    }

    @Test func theLatestNumberAfterAReconnectRevealsWhatWasMissed() {
        var gate = Gate()
        #expect(describe(gate.latest(9)) == [])  // nothing delivered yet: nothing to compare
        _ = gate.received("a", sequence: 10)
        #expect(describe(gate.latest(10)) == [])
        #expect(describe(gate.latest(12)) == ["fetch 11...12"])
        #expect(describe(gate.received("m", sequence: 13)) == [])
        #expect(describe(gate.fetched([(11, "k"), (12, "l")])) == ["11:k 12:l", "13:m"])
    }

    /// Every order in which a hole, its fetch and later messages can interleave ends with
    /// the same delivery: every number once, in order.
    @Test func everyInterleavingOfArrivalsAndTheFetchDeliversInOrder() {
        // Messages 1...6 published; the subscription loses 2 and 3 (the log has them).
        let arrivals: [UInt64] = [1, 4, 5, 6]
        for fetchAfter in 1...arrivals.count {
            var gate = Gate()
            var delivered: [UInt64] = []
            func run(_ actions: [Gate.Action]) {
                for case .deliver(let messages) in actions { delivered += messages.compactMap(\.sequence) }
            }
            for (index, number) in arrivals.enumerated() {
                run(gate.received(String(number), sequence: number))
                if index + 1 == fetchAfter, gate.fetching != nil { run(gate.fetched([(2, "2"), (3, "3")])) }
            }
            if gate.fetching != nil { run(gate.fetched([(2, "2"), (3, "3")])) }
            #expect(delivered == [1, 2, 3, 4, 5, 6], "fetch answered after arrival \(fetchAfter)")
        }
    }

    @Test func clusterMessagesRoundTripAndMalformedOnesAreRefused() throws {
        let packet = SocketIOPacket(type: .event, namespace: "/chat", data: ["news", .binary(ByteBuffer(bytes: [1, 2, 3])), "x"])
        let message = ClusterMessage(packet: packet, filter: BroadcastFilter(rooms: ["a", "b"], except: ["c"], volatile: true), numbered: true)
        var bytes = message.bytes
        let read = try #require(ClusterMessage(reading: &bytes))
        #expect(read == message)
        #expect(read.filter == BroadcastFilter(rooms: ["a", "b"], except: ["c"], volatile: true))
        let encoded = read.packet(offset: 42)
        #expect(encoded.sequence == 42)
        #expect(String(buffer: encoded.encodedText) == #"51-/chat,["news",{"_placeholder":true,"num":0},"x","42"]"#)
        #expect(encoded.encodedAttachments == [ByteBuffer(bytes: [1, 2, 3])])
        #expect(String(buffer: read.packet(offset: nil).encodedText) == #"51-/chat,["news",{"_placeholder":true,"num":0},"x"]"#)
        // Every truncation, and trailing bytes, are refused.
        let whole = message.bytes
        for length in 0..<whole.readableBytes {
            var cut = whole.getSlice(at: whole.readerIndex, length: length)!
            #expect(ClusterMessage(reading: &cut) == nil)
        }
        var longer = whole
        longer.writeInteger(UInt8(0))
        #expect(ClusterMessage(reading: &longer) == nil)
    }

    @Test func sessionRecordsRoundTrip() throws {
        let session = PersistedSessionInfo(
            id: "sid", pid: "pid", rooms: RoomMemberships(since: ["sid": 0, "lobby": 1_795_988_580_732_001]),
            data: ["name": "ada", "n": 3]
        )
        let read = try #require(SessionRecord.session(SessionRecord.text(session)))
        #expect(read.id == "sid" && read.pid == "pid" && read.rooms == session.rooms && read.data == session.data)
        #expect(SessionRecord.session(#"{"id":"a","pid":"b","rooms":{"x":-1}}"#) == nil)
        #expect(SessionRecord.session("not json") == nil)
    }
}
