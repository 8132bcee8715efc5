import NIOCore
import Testing

@testable import SocketIO
@testable import SocketIORedis

/// The cluster adapter's own logic (one order through the sequence gate, holes filled from
/// the log, requests and their answers, sessions taken over, the bus away or stalled) on
/// the in-memory bus: no Redis, and faults placed exactly. `RedisAdapterTests` runs the same
/// adapter on Redis.
@Suite struct ClusterAdapterTests {
    let cluster = InMemoryCluster()

    /// A node of the cluster: a server whose adapter runs on the in-memory bus.
    final class Node: Sendable {
        let io: SocketIOServer
        let bus: InMemoryCluster.Node

        init(_ cluster: InMemoryCluster) {
            bus = cluster.node()
            var configuration = SocketIOConfiguration()
            configuration.connectionStateRecovery = ConnectionStateRecovery()
            configuration.adapter = bus.makeAdapter
            io = SocketIOServer(configuration: configuration)
            io.sockets.onConnection { socket in
                socket.on("join") { event in
                    if case .string(let room)? = event.arguments.first { socket.join(room) }
                    event.ack?()
                }
            }
        }
    }

    func connectedClient(of node: Node) async throws -> TestClient {
        let client = try await TestClient.webSocket(to: node.io)
        try await client.connect()
        return client
    }

    @Test func everyNodeDeliversOneSequence() async throws {
        let (one, two, three) = (Node(cluster), Node(cluster), Node(cluster))
        let clients = [try await connectedClient(of: one), try await connectedClient(of: two), try await connectedClient(of: three)]
        for index in 0..<30 { [one, two, three][index % 3].io.sockets.emit("n", .number(Double(index))) }
        let seen = [try await clients[0].events(30), try await clients[1].events(30), try await clients[2].events(30)]
        #expect(seen[0] == seen[1] && seen[1] == seen[2])  // packets, offsets and order
        let offsets = seen[0].compactMap { $0.last?.stringValue.flatMap { UInt64($0) } }
        #expect(offsets == Array(1...30))
    }

    @Test func aNodeThatMissedMessagesReadsThemFromTheLogInOrder() async throws {
        let (one, two) = (Node(cluster), Node(cluster))
        let bob = try await connectedClient(of: two)
        one.io.sockets.emit("n", 0)
        #expect(try await bob.events(1)[0][1] == 0)
        cluster.deafen(two.bus)
        for index in 1...5 { one.io.sockets.emit("n", .number(Double(index))) }
        cluster.hear(two.bus)  // back, told to catch up
        one.io.sockets.emit("n", 6)
        #expect(try await bob.events(6).map { $0[1] } == [1, 2, 3, 4, 5, 6])
    }

    /// Heard again without being told (a live message shows the hole first): the gate holds
    /// the live one back until the log has filled the hole.
    @Test func aHoleShownByALaterMessageIsFilledBeforeIt() async throws {
        let (one, two) = (Node(cluster), Node(cluster))
        let bob = try await connectedClient(of: two)
        one.io.sockets.emit("n", 0)
        #expect(try await bob.events(1)[0][1] == 0)
        cluster.deafen(two.bus)
        for index in 1...3 { one.io.sockets.emit("n", .number(Double(index))) }
        cluster.hearSilently(two.bus)
        one.io.sockets.emit("n", 4)
        #expect(try await bob.events(4).map { $0[1] } == [1, 2, 3, 4])
    }

    @Test func aSessionIsTakenOverOnAnotherNode() async throws {
        let (one, two) = (Node(cluster), Node(cluster))
        let ada = try await TestClient.webSocket(to: one.io)
        let answer = try await ada.connect()
        try await ada.send(#"421["join","lobby"]"#)
        #expect(try await ada.nextText() == "431[]")
        two.io.sockets.to("lobby").emit("news", "first")
        let offset = try await ada.events(1)[0].last!
        try await ada.cut()
        two.io.sockets.to("lobby").emit("news", "missed")
        two.io.sockets.to("elsewhere").emit("news", "not for ada")
        let back = try await TestClient.webSocket(to: two.io)
        #expect(try await back.connect(auth: ["pid": answer["pid"]!, "offset": offset])["sid"] == answer["sid"])
        #expect(try await back.events(1)[0].prefix(2) == ["news", "missed"])
        // The client comes back once more, to node one, while node two still holds its socket
        // (a half-open link): the newest connection wins, and node two lets go.
        let third = try await TestClient.webSocket(to: one.io)
        #expect(try await third.connect(auth: ["pid": answer["pid"]!, "offset": offset])["sid"] == answer["sid"])
        while true { if case .close = try await back.next() { break } }
    }

    @Test func requestsAreAnsweredByEveryOtherNode() async throws {
        let nodes = [Node(cluster), Node(cluster), Node(cluster)]
        for (index, node) in nodes.enumerated() {
            node.io.sockets.onServerSideEmitWithAck("who") { _ in [.string("node \(index)")] }
        }
        // A timeout far past any answer's: what is checked is who answers, and a run whose
        // other tests keep the machine busy must not turn a late answer into a failure.
        let answers = try await nodes[0].io.sockets.serverSideEmitWithAck("who", [], timeout: .seconds(30))
        #expect(Set(answers.compactMap { $0.first?.stringValue }) == ["node 1", "node 2"])
        var clients: [TestClient] = []
        for node in nodes { clients.append(try await connectedClient(of: node)) }
        try await clients[2].send(#"421["join","lobby"]"#)
        #expect(try await clients[2].nextText() == "431[]")
        #expect(try await nodes[0].io.sockets.broadcastOperator.fetchSockets().count == 3)
        #expect(try await nodes[1].io.sockets.to("lobby").fetchSockets().map { $0.rooms.contains("lobby") } == [true])
    }

    @Test func whileTheBusIsAwayANodeServesItsOwnSockets() async throws {
        let (one, two) = (Node(cluster), Node(cluster))
        let (ada, bob) = (try await connectedClient(of: one), try await connectedClient(of: two))
        cluster.setAway(true)
        one.io.sockets.emit("news", "during")
        #expect(try await ada.events(1)[0] == ["news", "during"])  // without an offset
        #expect(try await bob.isQuiet(for: .milliseconds(100)))
        cluster.setAway(false)
        one.io.sockets.emit("news", "after")
        #expect(try await bob.events(1)[0].prefix(2) == ["news", "after"])
    }

    /// The bus stalls (as Redis in `DEBUG SLEEP`): the broadcast's answer times out, so its
    /// node delivers it for want of one; the bus makes it later all the same, and that node
    /// does not deliver it again, while the other gets it once.
    @Test func aBroadcastWhoseAnswerTimedOutIsDeliveredOnceOnItsNode() async throws {
        let (one, two) = (Node(cluster), Node(cluster))
        let (ada, bob) = (try await connectedClient(of: one), try await connectedClient(of: two))
        cluster.stall()
        one.io.sockets.emit("n", "late")
        #expect(try await ada.events(1) == [["n", "late"]])  // unnumbered, for want of the answer
        cluster.resume()
        one.io.sockets.emit("n", "next")
        #expect(try await ada.events(1).map { $0[1] } == ["next"])  // not "late" a second time
        #expect(try await bob.events(2).map { $0[1] } == ["late", "next"])
    }

    @Test func adapterMessagesRoundTripAndMalformedOnesAreRefused() throws {
        let broadcast = ClusterMessage(
            packet: SocketIOPacket(type: .event, data: ["n", .binary(ByteBuffer(bytes: [1, 2]))]), filter: BroadcastFilter(rooms: ["a"]),
            numbered: true, origin: .init(node: "0123456789abcdef", serial: 3)
        )
        let messages: [AdapterMessage] = [
            .broadcast(broadcast),
            .request(from: "node", id: "1f", ["op": "fetch", "rooms": ["a"]]),
            .response(to: "node", id: "1f", ["sockets": [["id": "x", "data": .binary(ByteBuffer(bytes: [0]))]]]),
            .serverSideEvent(from: "node", arguments: ["tick", 1, .binary(ByteBuffer(bytes: [255]))]),
            .takeover(from: "node", pid: "p", socket: "s"),
        ]
        for message in messages {
            let whole = message.bytes
            #expect(AdapterMessage(whole) == message)
            for length in 0..<whole.readableBytes {
                #expect(AdapterMessage(whole.getSlice(at: whole.readerIndex, length: length)!) == nil, "\(message) cut at \(length)")
            }
            var longer = whole
            longer.writeInteger(UInt8(0))
            #expect(AdapterMessage(longer) == nil)
        }
        var otherVersion = messages[4].bytes
        otherVersion.setInteger(UInt8(2), at: otherVersion.readerIndex)
        #expect(AdapterMessage(otherVersion) == nil)
    }
}
