import NIOConcurrencyHelpers
import NIOCore
import SocketIOTesting
import Testing

@testable import SocketIO

/// `SocketIOInstrument`: what a monitor is told, and what it costs.
@Suite struct InstrumentTests {
    final class Recorder: SocketIOInstrument {
        let log = NIOLockedValueBox<[String]>([])
        let wantsSent: Bool
        init(wantsSent: Bool = true) { self.wantsSent = wantsSent }

        func note(_ line: String) { log.withLockedValue { $0.append(line) } }
        var lines: [String] { log.withLockedValue { $0 } }

        func refusal(for socket: SocketIOSocket) -> SocketIOConnectError? {
            socket.handshake.auth["refuse"] == true ? SocketIOConnectError("refused by the instrument") : nil
        }
        func socketConnected(_ socket: SocketIOSocket) { note("connected \(socket.namespace.name)") }
        func socketDisconnected(_ socket: SocketIOSocket, reason: SocketIODisconnectReason) { note("disconnected \(reason)") }
        func socket(_ socket: SocketIOSocket, joined room: String) { note("joined \(room)") }
        func socket(_ socket: SocketIOSocket, left room: String) { note("left \(room)") }
        func socket(_ socket: SocketIOSocket, received event: [JSONValue]) { note("received \(JSONValue.array(event))") }
        func socket(_ socket: SocketIOSocket, sent event: [JSONValue]) { note("sent \(JSONValue.array(event))") }
        func wantsSentEvents(on namespace: SocketIONamespace) -> Bool { wantsSent }
    }

    func server(recovery: Bool = true) -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        if recovery { configuration.connectionStateRecovery = ConnectionStateRecovery() }
        let io = SocketIOServer(configuration: configuration)
        io.sockets.onConnection { socket in
            socket.on("enter") { event in
                socket.join("lobby")
                socket.leave("lobby")
                socket.join("lobby")
                event.ack?()
            }
            socket.on("shout") { event in
                io.sockets.to("lobby").emit("shouted", arguments: event.arguments)
                event.ack?()
            }
        }
        return io
    }

    @Test func theInstrumentHearsEveryStepOfASocketsLife() async throws {
        let io = server()
        let recorder = Recorder()
        #expect(io.instrument(recorder))
        #expect(!io.instrument(Recorder()))  // one per server
        let ada = try await SocketIOTestClient.connect(to: io)
        _ = try await ada.emitWithAck("enter")
        _ = try await ada.emitWithAck("shout", "hi", ["n": 1])
        _ = try await ada.nextEvent(named: "shouted")
        try await ada.disconnect()
        try await waitUntil { recorder.lines.last?.hasPrefix("disconnected") == true }
        // The recovery offset the broadcast carried is the server's, not the event's.
        #expect(recorder.lines == [
            "connected /",
            #"received ["enter"]"#, "joined lobby", "left lobby", "joined lobby",
            #"received ["shout","hi",{"n":1}]"#, #"sent ["shouted","hi",{"n":1}]"#,
            "disconnected client namespace disconnect",
        ])
    }

    @Test func aRefusalIsTheClientsConnectError() async throws {
        let io = server()
        let recorder = Recorder()
        io.instrument(recorder)
        await #expect(throws: SocketIOConnectError.self) { _ = try await SocketIOTestClient.connect(to: io, auth: ["refuse": true]) }
        #expect(await io.sockets.socketCount() == 0)
        #expect(recorder.lines.isEmpty)
    }

    @Test func sentEventsAreDecodedOncePerEventLoop() async throws {
        let decoder = SentEventDecoder()
        let packet = SocketIOPacketEncoder.encode(SocketIOPacket(type: .event, namespace: "/", data: ["news", "one"]), offset: 7)
        #expect(decoder.event(of: packet) == ["news", "one"])
        #expect(decoder.decodings == 1)
        #expect(decoder.event(of: packet) == ["news", "one"])  // the next recipient on the loop
        #expect(decoder.decodings == 1)
        let equal = SocketIOPacketEncoder.encode(SocketIOPacket(type: .event, namespace: "/", data: ["news", "one"]), offset: 7)
        #expect(decoder.event(of: equal) == ["news", "one"])  // another packet: decoded anew
        #expect(decoder.decodings == 2)
        let ack = SocketIOPacketEncoder.encode(SocketIOPacket(type: .ack, namespace: "/", id: 1, data: []))
        #expect(decoder.event(of: ack) == nil)
        let binary = SocketIOPacketEncoder.encode(SocketIOPacket(type: .event, namespace: "/", data: ["file", .binary(ByteBuffer(bytes: [1, 2]))]))
        #expect(decoder.event(of: binary) == ["file", .binary(ByteBuffer(bytes: [1, 2]))])
    }

    @Test func anInstrumentThatDoesNotWantSentEventsIsNotAskedPerRecipient() async throws {
        let io = server()
        let recorder = Recorder(wantsSent: false)
        io.instrument(recorder)
        let ada = try await SocketIOTestClient.connect(to: io)
        _ = try await ada.emitWithAck("enter")
        _ = try await ada.emitWithAck("shout", "hi")
        _ = try await ada.nextEvent(named: "shouted")
        #expect(!recorder.lines.contains { $0.hasPrefix("sent") })
    }

    @Test func aBroadcastWithoutRecoveryCarriesNoOffsetAndIsNotKept() async throws {
        let io = server()
        let ada = try await SocketIOTestClient.connect(to: io)
        // A number last: the test client takes a trailing string for an offset.
        io.sockets.broadcastOperator.withoutRecovery.emit("live", arguments: ["now", 1])
        let live = try await ada.nextEvent(named: "live")
        #expect(live.arguments == ["now", 1])
        #expect(live.offset == nil)
        io.sockets.emit("kept", "later")
        #expect(try await ada.nextEvent(named: "kept").offset != nil)
    }

    private func waitUntil(_ condition: @escaping @Sendable () -> Bool) async throws {
        for _ in 0..<200 where !condition() { try await Task.sleep(for: .milliseconds(10)) }
        #expect(condition())
    }
}
