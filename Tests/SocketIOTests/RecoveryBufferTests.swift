import EngineIO
import NIOCore
import Testing

@testable import SocketIO

@Suite struct RecoveryBufferTests {
    let start = NIODeadline.uptimeNanoseconds(1_000_000_000)

    private func packet(_ n: Int) -> EncodedSocketIOPacket {
        SocketIOPacketEncoder.encode(SocketIOPacket(type: .event, data: ["tick", .number(Double(n))]))
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
        let missed = buffer.packets(after: "4", forSocketIn: ["me"], now: start)
        #expect(missed == (4..<10).map(packet))
        #expect(buffer.packets(after: "10", forSocketIn: ["me"], now: start) == [])
    }

    @Test func refusesOffsetsItCannotVouchFor() {
        var buffer = RecoveryBuffer(maxAge: .seconds(120), maxCount: 5, maxBytes: 1 << 20)
        #expect(buffer.packets(after: "1", forSocketIn: [], now: start) == nil)  // empty
        fill(&buffer, 8)  // keeps 4...8
        #expect(buffer.count == 5)
        #expect(buffer.packets(after: "3", forSocketIn: [], now: start) == nil)  // dropped
        #expect(buffer.packets(after: "4", forSocketIn: [], now: start)?.count == 4)
        #expect(buffer.packets(after: "9", forSocketIn: [], now: start) == nil)  // never issued
        #expect(buffer.packets(after: "x", forSocketIn: [], now: start) == nil)
        #expect(buffer.packets(after: "-1", forSocketIn: [], now: start) == nil)
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
        #expect(buffer.packets(after: "1", forSocketIn: [], now: start + .seconds(121)) == nil)
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
        let missed = buffer.packets(after: "1", forSocketIn: ["me", "a"], now: start)
        #expect(missed?.count == 3)  // 2, 5, 6
    }

    @Test func filterSemantics() {
        #expect(BroadcastFilter().includes(socketRooms: ["x"]))
        #expect(BroadcastFilter(rooms: ["a", "b"]).includes(socketRooms: ["b"]))
        #expect(!BroadcastFilter(rooms: ["a"]).includes(socketRooms: ["b"]))
        #expect(!BroadcastFilter(except: ["me"]).includes(socketRooms: ["me", "a"]))
        #expect(!BroadcastFilter(rooms: ["a"], except: ["c"]).includes(socketRooms: ["a", "c"]))
    }

    @Test func identifiersAreDistinctAndURLSafe() {
        let ids = (0..<1000).map { _ in SocketIOIdentifier.make() }
        #expect(Set(ids).count == 1000)
        #expect(ids.allSatisfy { $0.utf8.count == 20 })
    }
}
