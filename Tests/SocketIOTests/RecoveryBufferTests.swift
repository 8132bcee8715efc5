import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite struct RecoveryBufferTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func packet(_ n: Int) -> EncodedSocketIOPacket {
        SocketIOPacketEncoder.encode(SocketIOPacket(type: .event, data: ["tick", .number(Double(n))]))
    }

    private func members(_ rooms: String...) -> RoomMemberships {
        RoomMemberships(since: Dictionary(uniqueKeysWithValues: rooms.map { ($0, 0) }))
    }

    private func fill(_ buffer: inout RecoveryBuffer, _ count: Int, filter: BroadcastFilter = .init(), at time: NIODeadline? = nil) {
        for n in 0..<count {
            let sequence = buffer.takeSequence()
            buffer.append(sequence: sequence, packet: packet(n), filter: filter, now: time ?? start)
        }
    }

    @Test func returnsThePacketsAfterAnOffsetInOrder() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 100, maxBytes: 1 << 20)
        fill(&buffer, 10)
        let missed = buffer.packets(after: "4", for: members("me"), now: start)
        #expect(missed?.packets == (4..<10).map(packet))
        #expect(missed?.through == 10)
        #expect(buffer.packets(after: "10", for: members("me"), now: start)?.packets == [])
    }

    @Test func refusesOffsetsItCannotVouchFor() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 5, maxBytes: 1 << 20)
        #expect(buffer.packets(after: "1", for: members(), now: start) == nil)  // empty
        fill(&buffer, 8)  // keeps 4...8
        #expect(buffer.count == 5)
        #expect(buffer.packets(after: "3", for: members(), now: start) == nil)  // dropped
        #expect(buffer.packets(after: "4", for: members(), now: start)?.packets.count == 4)
        #expect(buffer.packets(after: "9", for: members(), now: start) == nil)  // never issued
        #expect(buffer.packets(after: "x", for: members(), now: start) == nil)
        #expect(buffer.packets(after: "-1", for: members(), now: start) == nil)
    }

    @Test func isBoundedInBytes() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 1000, maxBytes: 100)
        fill(&buffer, 50)
        #expect(buffer.byteCount <= 100)
        #expect(buffer.count < 50)
    }

    @Test func isBoundedInAge() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 1000, maxBytes: 1 << 20)
        fill(&buffer, 3, at: start)
        #expect(buffer.packets(after: "1", for: members(), now: start + .seconds(121)) == nil)
        fill(&buffer, 1, at: start + .seconds(121))
        #expect(buffer.count == 1)
    }

    @Test func filtersByRoomsAsTheBroadcastDid() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 100, maxBytes: 1 << 20)
        fill(&buffer, 1)
        fill(&buffer, 1, filter: BroadcastFilter(rooms: ["a"]))  // 2
        fill(&buffer, 1, filter: BroadcastFilter(rooms: ["b"]))  // 3
        fill(&buffer, 1, filter: BroadcastFilter(except: ["me"]))  // 4
        fill(&buffer, 1, filter: BroadcastFilter(rooms: ["a"], except: ["b"]))  // 5
        fill(&buffer, 1)  // 6
        let missed = buffer.packets(after: "1", for: members("me", "a"), now: start)
        #expect(missed?.packets.count == 3)  // 2, 5, 6
    }

    @Test func aRoomJoinedLateIsReplayedFromTheOffsetItWasJoinedAt() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 100, maxBytes: 1 << 20)
        fill(&buffer, 5, filter: BroadcastFilter(rooms: ["chat"]))  // 1...5
        var memberships = members("me")
        memberships.join("chat", from: 4)
        // Offsets 2 and 3 went to the room before the socket joined: a replay after 1 leaves
        // them out, as live delivery did.
        let missed = buffer.packets(after: "1", for: memberships, now: start)
        #expect(missed?.packets == [packet(3), packet(4)])
        #expect(!BroadcastFilter(rooms: ["chat"]).includes(memberships, at: 3))
        #expect(BroadcastFilter(rooms: ["chat"]).includes(memberships, at: 4))
        #expect(BroadcastFilter(rooms: ["chat"]).includes(memberships, at: nil))
        #expect(BroadcastFilter(except: ["chat"]).includes(memberships, at: 3))
        #expect(!BroadcastFilter(except: ["chat"]).includes(memberships, at: 4))
    }

    @Test func theTailOfAReplayIsReadAfterTheOffsetItCoveredOrRefused() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 5, maxBytes: 1 << 20)
        fill(&buffer, 4)  // 1...4
        #expect(buffer.packets(following: 4, for: members())?.packets == [])
        fill(&buffer, 2)  // 1...6, keeps 2...6
        let tail = buffer.packets(following: 4, for: members())
        #expect(tail?.packets == [packet(0), packet(1)])
        #expect(tail?.through == 6)
        #expect(buffer.packets(following: 0, for: members()) == nil)  // 1 was dropped
    }

    @Test func filterSemantics() {
        #expect(BroadcastFilter().includes(members("x"), at: 1))
        #expect(BroadcastFilter(rooms: ["a", "b"]).includes(members("b"), at: 1))
        #expect(!BroadcastFilter(rooms: ["a"]).includes(members("b"), at: 1))
        #expect(!BroadcastFilter(except: ["me"]).includes(members("me", "a"), at: 1))
        #expect(!BroadcastFilter(rooms: ["a"], except: ["c"]).includes(members("a", "c"), at: nil))
    }

    @Test func identifiersAreDistinctAndURLSafe() {
        let ids = (0..<1000).map { _ in RandomIdentifier.make(byteCount: 15) }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.utf8.count == 20 })
    }
}
