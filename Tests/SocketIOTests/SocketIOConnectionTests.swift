import NIOCore
import Testing

@testable import SocketIO

/// `SocketIOConnection`, the namespace and the socket through the in-process harness: what
/// a client sees for each packet it sends.
@Suite struct SocketIOConnectionTests {
    func server(recovery: Bool = false) -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        if recovery { configuration.connectionStateRecovery = ConnectionStateRecovery() }
        let io = SocketIOServer(configuration: configuration)
        io.sockets.onConnection { socket in
            socket.emit("welcome", .object(socket.handshake.auth))
            socket.on("echo") { event in event.ack?.send(event.arguments) }
            socket.on("join") { event in
                if case .string(let room)? = event.arguments.first { socket.join(room) }
                event.ack?()
            }
            socket.on("to room") { event in
                if case .string(let room)? = event.arguments.first { io.to(room).emit("in room", arguments: Array(event.arguments.dropFirst())) }
            }
        }
        io.of("/admin").use { socket in
            guard socket.handshake.auth["token"] == "secret" else { throw SocketIOConnectError("not authorized", data: ["code": 401]) }
        }
        return io
    }

    @Test func connectAnswersWithASidAndRunsTheHandlers() async throws {
        let client = try await TestClient.webSocket(to: server())
        let answer = try await client.connect(auth: ["name": "ada"])
        #expect(answer["sid"]?.stringValue?.count == 20)
        #expect(answer["pid"] == nil)  // recovery is off
        #expect(try await client.events(1) == [["welcome", ["name": "ada"]]])
    }

    @Test func acksCarryTheArgumentsBack() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        _ = try await client.events(1)
        try await client.send(#"4217["echo",1,"two",{"three":[true]}]"#)
        #expect(try await client.nextText() == #"4317[1,"two",{"three":[true]}]"#)
    }

    @Test func middlewaresRefuseWithMessageAndData() async throws {
        let client = try await TestClient.webSocket(to: server())
        await #expect(throws: SocketIOConnectError.self) { try await client.connect("/admin", auth: ["token": "wrong"]) }
        let accepted = try await TestClient.webSocket(to: server())
        #expect(try await accepted.connect("/admin", auth: ["token": "secret"])["sid"] != nil)
    }

    @Test func unknownNamespacesAreRefused() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.send("40/nope,")
        #expect(try await client.nextText() == #"44/nope,{"message":"Invalid namespace"}"#)
    }

    @Test func aPacketThatDoesNotParseClosesTheConnection() async throws {
        let client = try await TestClient.webSocket(to: server())
        try await client.connect()
        _ = try await client.events(1)
        try await client.send(#"42{"not":"an array"}"#)
        #expect(try await client.next() == .close(code: 1000))
    }

    @Test func roomsReachTheirMembersOnly() async throws {
        let io = server()
        let (ada, bob) = (try await TestClient.webSocket(to: io), try await TestClient.webSocket(to: io))
        for client in [ada, bob] {
            try await client.connect()
            _ = try await client.events(1)
        }
        try await bob.send(#"421["join","lobby"]"#)
        #expect(try await bob.nextText() == "431[]")
        try await ada.send(#"42["to room","lobby","hi"]"#)
        #expect(try await bob.events(1) == [["in room", "hi"]])
        #expect(try await ada.isQuiet())
    }

    @Test func withRecoveryEveryEmitCarriesAnOffsetAndALostLinkIsRecovered() async throws {
        let io = server(recovery: true)
        let client = try await TestClient.webSocket(to: io)
        let answer = try await client.connect()
        let welcome = try await client.events(1)[0]
        guard case .string(let offset)? = welcome.last else { throw SocketIOConnectError("no offset") }
        try await client.cut()
        io.sockets.emit("missed", "while away")
        let back = try await TestClient.webSocket(to: io)
        let again = try await back.connect(auth: ["pid": answer["pid"]!, "offset": .string(offset)])
        #expect(again["sid"] == answer["sid"])
        let events = try await back.events(2)
        #expect(events[0].prefix(2) == ["missed", "while away"])  // replayed, then the handler's welcome
        #expect(events[1].first == "welcome")
    }
}

/// `SocketShard`, the index a broadcast walks: its room members are the sockets themselves,
/// so one that a recovered session's socket replaced must leave them when it is replaced.
@Suite struct SocketShardTests {
    @Test func aSocketThatTakesAnIdTakesOverItsRoomsAlone() async throws {
        let io = SocketIOServer()
        let connected = AsyncStream.makeStream(of: SocketIOSocket.self)
        io.sockets.onConnection { socket in
            socket.join("lobby")
            connected.continuation.yield(socket)
        }
        let client = try await TestClient.webSocket(to: io)
        _ = try await client.connect()
        var sockets = connected.stream.makeAsyncIterator()
        let old = try #require(await sockets.next())
        let (lobby, hall) = (BroadcastFilter(rooms: ["lobby"]), BroadcastFilter(rooms: ["hall"]))
        let reached = try await old.eventLoop.submit { () -> [[ObjectIdentifier]] in
            let shard = SocketShard(eventLoop: old.eventLoop)
            shard.add(old)
            let before = shard.sockets(matching: lobby).map(ObjectIdentifier.init)
            // The recovered socket, in another room, registered before the old one's cleanup.
            let restored = RestoredSession(
                id: old.id, pid: "pid", rooms: RoomMemberships(since: ["hall": 0]), data: .null, missedPackets: [], through: 0
            )
            let new = SocketIOSocket(namespace: old.namespace, connection: old.connection, auth: [:], restored: restored)
            shard.add(new)
            let replaced = shard.sockets(matching: lobby).map(ObjectIdentifier.init)
            shard.remove(old)  // the stale cleanup: must leave the new socket in place
            let kept = shard.sockets(matching: hall).map(ObjectIdentifier.init)
            return [before, replaced, kept, [ObjectIdentifier(old), ObjectIdentifier(new)]]
        }.get()
        #expect(reached[0] == [reached[3][0]])
        #expect(reached[1] == [])
        #expect(reached[2] == [reached[3][1]])
    }
}
