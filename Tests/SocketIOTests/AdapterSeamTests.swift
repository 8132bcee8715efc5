import NIOCore
import Testing

@testable import SocketIO

/// The adapter seam: two servers in one process share a `BusAdapter`, as nodes of a cluster
/// share a message bus. Broadcasts on one reach the sockets of the other, rooms included,
/// and a session persisted by one is recovered by the other.
@Suite struct AdapterSeamTests {
    let bus = MessageBus()

    func node() -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        configuration.connectionStateRecovery = ConnectionStateRecovery()
        let bus = self.bus
        configuration.adapter = { host, _ in BusAdapter(bus: bus, host: host) }
        let io = SocketIOServer(configuration: configuration)
        io.sockets.onConnection { socket in
            socket.on("join") { event in
                if case .string(let room)? = event.arguments.first { socket.join(room) }
                event.ack?()
            }
        }
        return io
    }

    @Test func aBroadcastOnOneNodeReachesTheSocketsOfTheOther() async throws {
        let (one, two) = (node(), node())
        let (ada, bob) = (try await TestClient.webSocket(to: one), try await TestClient.webSocket(to: two))
        try await ada.connect()
        try await bob.connect()
        one.sockets.emit("hello", "from one")
        two.sockets.emit("hello", "from two")
        for client in [ada, bob] {
            let events = try await client.events(2)
            #expect(events.map { Array($0.prefix(2)) } == [["hello", "from one"], ["hello", "from two"]])
            #expect(events.map { $0.last } == [.string("1"), .string("2")])  // one offset space
        }
    }

    @Test func roomsWorkAcrossNodes() async throws {
        let (one, two) = (node(), node())
        let (ada, bob) = (try await TestClient.webSocket(to: one), try await TestClient.webSocket(to: two))
        try await ada.connect()
        try await bob.connect()
        try await bob.send(#"421["join","lobby"]"#)
        #expect(try await bob.nextText() == "431[]")
        one.to("lobby").emit("news", "for the lobby")
        #expect(try await bob.events(1)[0].prefix(2) == ["news", "for the lobby"])
        #expect(try await ada.isQuiet())
    }

    @Test func aSessionPersistedByOneNodeIsRecoveredByTheOther() async throws {
        let (one, two) = (node(), node())
        let ada = try await TestClient.webSocket(to: one)
        let answer = try await ada.connect()
        try await ada.send(#"421["join","lobby"]"#)
        #expect(try await ada.nextText() == "431[]")
        one.to("lobby").emit("news", "first")
        let offset = try await ada.events(1)[0].last!
        try await ada.cut()  // node one keeps the session on the bus
        two.to("lobby").emit("news", "missed")
        let back = try await TestClient.webSocket(to: two)
        let again = try await back.connect(auth: ["pid": answer["pid"]!, "offset": offset])
        #expect(again["sid"] == answer["sid"])  // recovered, on the other node
        #expect(try await back.events(1)[0].prefix(2) == ["news", "missed"])
        // Its room came with it: live broadcasts from either node reach it.
        one.to("lobby").emit("news", "live")
        #expect(try await back.events(1)[0].prefix(2) == ["news", "live"])
    }

    @Test func socketOperationsReachTheSocketsOfEveryNode() async throws {
        let (one, two) = (node(), node())
        let (ada, bob) = (try await TestClient.webSocket(to: one), try await TestClient.webSocket(to: two))
        try await ada.connect(auth: ["name": "ada"])
        try await bob.connect(auth: ["name": "bob"])
        #expect(Set(try await one.sockets.broadcastOperator.fetchSockets().compactMap { $0.auth["name"]?.stringValue }) == ["ada", "bob"])
        try await one.sockets.broadcastOperator.socketsJoin("hall")
        #expect(try await two.sockets.to("hall").fetchSockets().count == 2)
        try await two.sockets.to("hall").socketsLeave("hall")
        #expect(try await one.sockets.to("hall").fetchSockets().isEmpty)
        try await two.sockets.broadcastOperator.disconnectSockets()
        #expect(try await ada.nextText() == "41")
        #expect(try await bob.nextText() == "41")
    }

    @Test func aProcessLocalAdapterActsOnItsOwnSockets() async throws {
        var configuration = SocketIOConfiguration()
        configuration.connectionStateRecovery = ConnectionStateRecovery()
        let io = SocketIOServer(configuration: configuration)
        let ada = try await TestClient.webSocket(to: io)
        try await ada.connect(auth: ["name": "ada"])
        try await io.sockets.broadcastOperator.socketsJoin("hall")
        let sockets = try await io.sockets.to("hall").fetchSockets()
        #expect(sockets.map { $0.auth["name"] } == ["ada"] && sockets[0].rooms.contains("hall"))
        #expect(try await io.sockets.serverSideEmitWithAck("anyone", []).isEmpty)  // no other node
    }

    @Test func aBroadcastWithAcksOnAProcessLocalAdapter() async throws {
        var configuration = SocketIOConfiguration()
        configuration.connectionStateRecovery = ConnectionStateRecovery()
        let io = SocketIOServer(configuration: configuration)
        let ada = try await TestClient.webSocket(to: io)
        try await ada.connect()
        let asked = Task { await io.sockets.broadcastOperator.emitWithAck("question", arguments: ["ok?"], timeout: .seconds(5)) }
        let text = try await ada.nextText()
        #expect(text.hasPrefix("421099511627776") && text.hasSuffix(#"["question","ok?"]"#))  // one id for everyone
        try await ada.send(#"431099511627776["fine"]"#)
        #expect(await asked.value == BroadcastAcks(responses: [["fine"]], expected: 1, isComplete: true))
        let nobody = await io.sockets.to("empty").emitWithAck("question", arguments: [], timeout: .seconds(5))
        #expect(nobody == BroadcastAcks(responses: [], expected: 0, isComplete: true))  // at once
    }
}
