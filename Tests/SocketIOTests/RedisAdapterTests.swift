import NIOCore
import NIOPosix
import Redis
import RedisTestSupport
import Testing

@testable import SocketIO
@testable import SocketIORedis

/// Nodes of one cluster in one process, each a `SocketIOServer` with its own
/// `RedisCluster`, over a real `redis-server`: broadcasts, rooms, one offset space,
/// recovery across nodes (also of a node that died without a word), and Redis going away.
@Suite(.serialized, .enabled(if: RedisTestServer.isInstalled)) struct RedisAdapterTests {
    final class Node: Sendable {
        let io: SocketIOServer
        let cluster: RedisCluster

        init(redis: RedisTestServer, prefix: String, commandTimeout: TimeAmount = .seconds(1)) async throws {
            var settings = RedisCluster.Configuration(address: RedisAddress(host: "127.0.0.1", port: redis.port))
            settings.keyPrefix = prefix
            settings.commandTimeout = commandTimeout
            let cluster = RedisCluster(configuration: settings, group: MultiThreadedEventLoopGroup.singleton)
            var configuration = SocketIOConfiguration()
            configuration.connectionStateRecovery = ConnectionStateRecovery()
            configuration.adapter = cluster.makeAdapter
            let io = SocketIOServer(configuration: configuration)
            io.sockets.onConnection { socket in
                socket.on("join") { event in
                    if case .string(let room)? = event.arguments.first { socket.join(room) }
                    event.ack?()
                }
                socket.on("keep") { event in
                    socket.data = ["avatar": .binary(ByteBuffer(bytes: [0, 1, 255]))]
                    event.ack?()
                }
            }
            cluster.start()
            try await cluster.ready.get()
            self.io = io
            self.cluster = cluster
        }

        deinit { cluster.shutdown() }
    }

    let redis: RedisTestServer
    let prefix = "test-\(UInt32.random(in: 0...UInt32.max))"

    init() throws {
        redis = try RedisTestServer()
    }

    func node() async throws -> Node { try await Node(redis: redis, prefix: prefix) }

    /// A client of `node` in room `lobby`, its CONNECT answer, and the offset of a first
    /// broadcast to the room from `sender`.
    func clientInTheLobby(of node: Node, hearing sender: Node) async throws -> (TestClient, JSONObject, JSONValue) {
        let client = try await TestClient.webSocket(to: node.io)
        let answer = try await client.connect()
        try await client.send(#"421["join","lobby"]"#)
        #expect(try await client.nextText() == "431[]")
        sender.io.sockets.to("lobby").emit("news", "first")
        return (client, answer, try await client.events(1)[0].last!)
    }

    @Test func aBroadcastOnOneNodeReachesEveryNodeInOneOrder() async throws {
        let (one, two) = (try await node(), try await node())
        let (ada, bob) = (try await TestClient.webSocket(to: one.io), try await TestClient.webSocket(to: two.io))
        try await ada.connect()
        try await bob.connect()
        for index in 0..<20 { (index % 2 == 0 ? one : two).io.sockets.emit("n", .number(Double(index))) }
        let (seenByAda, seenByBob) = (try await ada.events(20), try await bob.events(20))
        #expect(seenByAda == seenByBob)  // the same packets, offsets and order on both nodes
        let offsets = seenByAda.compactMap { $0.last?.stringValue.flatMap { UInt64($0) } }
        #expect(offsets.count == 20 && zip(offsets, offsets.dropFirst()).allSatisfy { $1 == $0 + 1 })
        // Each node's own emits come in the order it made them.
        #expect(seenByAda.filter { Int($0[1].numberValue!) % 2 == 0 }.map { $0[1] } == (0..<10).map { .number(Double($0 * 2)) })
    }

    @Test func roomsAndExceptWorkAcrossNodes() async throws {
        let (one, two) = (try await node(), try await node())
        let (ada, bob) = (try await TestClient.webSocket(to: one.io), try await TestClient.webSocket(to: two.io))
        try await ada.connect()
        try await bob.connect()
        try await bob.send(#"421["join","lobby"]"#)
        #expect(try await bob.nextText() == "431[]")
        one.io.sockets.to("lobby").emit("news", "for the lobby")
        #expect(try await bob.events(1)[0].prefix(2) == ["news", "for the lobby"])
        one.io.sockets.except("lobby").emit("news", "not for the lobby")
        #expect(try await ada.events(1)[0].prefix(2) == ["news", "not for the lobby"])
        #expect(try await bob.isQuiet(for: .milliseconds(200)))
    }

    @Test func aSessionIsRecoveredOnAnotherNode() async throws {
        let (one, two) = (try await node(), try await node())
        let (ada, answer, offset) = try await clientInTheLobby(of: one, hearing: one)
        try await ada.send(#"422["keep"]"#)
        #expect(try await ada.nextText() == "432[]")
        try await ada.cut()
        two.io.sockets.to("lobby").emit("news", "missed")
        two.io.sockets.to("elsewhere").emit("news", "not for ada")
        let back = try await TestClient.webSocket(to: two.io)
        let again = try await back.connect(auth: ["pid": answer["pid"]!, "offset": offset])
        #expect(again["sid"] == answer["sid"])
        #expect(try await back.events(1)[0].prefix(2) == ["news", "missed"])
        // Its data came with it, bytes and all (node one, if it has not let go of the socket
        // yet, answers with the same data, across nodes too).
        let data = try await two.io.sockets.broadcastOperator.fetchSockets().map(\.data)
        #expect(!data.isEmpty && data.allSatisfy { $0 == ["avatar": .binary(ByteBuffer(bytes: [0, 1, 255]))] })
        one.io.sockets.to("lobby").emit("news", "live")  // its room came with it
        #expect(try await back.events(1)[0].prefix(2) == ["news", "live"])
        // The client comes back once more, to node one, while node two still holds its
        // socket (a half-open link): the newest connection wins, on any node.
        let third = try await TestClient.webSocket(to: one.io)
        #expect(try await third.connect(auth: ["pid": answer["pid"]!, "offset": offset])["sid"] == answer["sid"])
        while true { if case .close = try await back.next() { break } }  // superseded
        two.io.sockets.to("lobby").emit("news", "to the newest")
        #expect(try await third.events(3).map { $0[1] } == ["missed", "live", "to the newest"])
    }

    @Test func theSocketsOfANodeThatDiedWithoutAWordAreRecovered() async throws {
        let (one, two) = (try await node(), try await node())
        let (ada, answer, offset) = try await clientInTheLobby(of: one, hearing: two)
        // Node one dies: it can no longer write anything to Redis, not even at disconnect.
        try await one.cluster.shutdown().get()
        try await ada.cut()
        for index in 0..<3 { two.io.sockets.to("lobby").emit("news", .number(Double(index))) }
        two.io.sockets.emit("news", "everyone")
        let back = try await TestClient.webSocket(to: two.io)
        let again = try await back.connect(auth: ["pid": answer["pid"]!, "offset": offset])
        #expect(again["sid"] == answer["sid"])
        #expect(try await back.events(4).map { $0[1] } == [0, 1, 2, "everyone"])
        #expect(try await back.isQuiet(for: .milliseconds(100)))
    }

    /// Nodes one and two, a client of two that heard a first broadcast of one (`n`, 0), and
    /// a connection to Redis of the test's own.
    func bobHearingNodeOne() async throws -> (one: Node, two: Node, bob: TestClient, admin: RedisConnection) {
        let (one, two) = (try await node(), try await node())
        let bob = try await TestClient.webSocket(to: two.io)
        try await bob.connect()
        one.io.sockets.emit("n", 0)
        #expect(try await bob.events(1)[0][1] == 0)
        let admin = try await RedisConnection.connect(host: "127.0.0.1", port: redis.port, group: MultiThreadedEventLoopGroup.singleton).get()
        return (one, two, bob, admin)
    }

    @Test func aNodeFillsWhatItsSubscriptionMissedFromTheLog() async throws {
        let (one, two, bob, admin) = try await bobHearingNodeOne()
        defer { withExtendedLifetime(two) { admin.close() } }
        // Cut every subscriber connection; node one publishes before node two is back.
        _ = try await admin.send("CLIENT", "KILL", "TYPE", "pubsub").get()
        for index in 1...5 { one.io.sockets.emit("n", .number(Double(index))) }
        #expect(try await bob.events(5).map { $0[1] } == [1, 2, 3, 4, 5])
        one.io.sockets.emit("n", 6)
        #expect(try await bob.events(1)[0][1] == 6)
    }

    /// A broadcast whose answer from Redis comes after the command timeout was run all the
    /// same: its node delivered it to its sockets for want of the answer, and does not
    /// deliver it again when it comes back on the subscription; the other nodes get it once.
    @Test func aBroadcastWhoseAnswerTimesOutIsDeliveredOnceOnItsNode() async throws {
        let one = try await Node(redis: redis, prefix: prefix, commandTimeout: .milliseconds(300))
        let two = try await node()
        let (ada, bob) = (try await TestClient.webSocket(to: one.io), try await TestClient.webSocket(to: two.io))
        try await ada.connect()
        try await bob.connect()
        let admin = try await RedisConnection.connect(host: "127.0.0.1", port: redis.port, group: MultiThreadedEventLoopGroup.singleton).get()
        defer { admin.close() }
        // Redis is busy for longer than the timeout: the broadcast, queued behind on the same
        // connection, times out here, and is run and published when Redis wakes.
        _ = one.cluster.send("DEBUG", "SLEEP", "1")
        one.io.sockets.emit("n", "late")
        #expect(try await ada.events(1) == [["n", "late"]])  // for want of the answer, unnumbered
        _ = try await admin.send("PING").get()  // awake again: "late" was published meanwhile
        one.io.sockets.emit("n", "next")
        #expect(try await ada.events(1).map { $0[1] } == ["next"])  // not "late" a second time
        #expect(try await bob.events(2).map { $0[1] } == ["late", "next"])
    }

    @Test func whileRedisIsAwayEachNodeServesItsOwnAndAfterwardsTheClusterResumes() async throws {
        let (one, two) = (try await node(), try await node())
        let (ada, bob) = (try await TestClient.webSocket(to: one.io), try await TestClient.webSocket(to: two.io))
        try await ada.connect()
        try await bob.connect()
        redis.stop()
        one.io.sockets.emit("news", "during")
        let during = try await ada.events(1)[0]
        #expect(during == ["news", "during"])  // delivered here, without an offset
        #expect(try await bob.isQuiet(for: .milliseconds(100)))
        try redis.start()
        // Both nodes reconnect on their own (backoff from 100 ms); then broadcasts flow again.
        try await one.cluster.connected().get()
        try await two.cluster.connected().get()
        one.io.sockets.emit("news", "after")
        #expect(try await bob.events(1)[0].prefix(2) == ["news", "after"])
    }
}

extension RedisAdapterTests {
    @Test func serverSideEventsReachTheOtherNodesInOrderAndLocalBroadcastsStayHome() async throws {
        let (one, two) = (try await node(), try await node())
        let (events, received) = AsyncStream.makeStream(of: [JSONValue].self)
        two.io.sockets.onServerSideEmit("tick") { received.yield($0) }
        one.io.sockets.onServerSideEmit("tick") { _ in Issue.record("a node hears its own server-side events") }
        for index in 0..<5 { one.io.sockets.serverSideEmit("tick", [.number(Double(index))]) }
        var inbox = events.makeAsyncIterator()
        for index in 0..<5 { #expect(await inbox.next() == [.number(Double(index))]) }
        // Bytes cross too: JSON has none, so they travel beside it.
        let bytes: JSONValue = ["raw": .binary(ByteBuffer(bytes: [0, 1, 254, 255]))]
        one.io.sockets.serverSideEmit("tick", [bytes])
        #expect(await inbox.next() == [bytes])

        let (ada, bob) = (try await TestClient.webSocket(to: one.io), try await TestClient.webSocket(to: two.io))
        try await ada.connect()
        try await bob.connect()
        one.io.sockets.broadcastOperator.local.emit("here", "only")
        #expect(try await ada.events(1)[0] == ["here", "only"])  // no offset: not kept for recovery
        #expect(try await bob.isQuiet(for: .milliseconds(200)))
    }
}

extension RedisAdapterTests {
    /// Three nodes that know of each other.
    func threeNodes() async throws -> [Node] {
        let nodes = [try await node(), try await node(), try await node()]
        for node in nodes { #expect(try await node.cluster.refreshNodeCount().get() == 3) }
        return nodes
    }

    @Test func socketsAreFetchedJoinedLeftAndDisconnectedOnEveryNode() async throws {
        let nodes = try await threeNodes()
        var clients: [TestClient] = []
        for (index, node) in nodes.enumerated() {
            let client = try await TestClient.webSocket(to: node.io)
            try await client.connect(auth: ["name": .string("client \(index)")])
            clients.append(client)
        }
        try await clients[2].send(#"421["join","lobby"]"#)
        #expect(try await clients[2].nextText() == "431[]")

        let everyone = try await nodes[0].io.sockets.broadcastOperator.fetchSockets()
        #expect(Set(everyone.compactMap { $0.auth["name"]?.stringValue }) == ["client 0", "client 1", "client 2"])
        let lobby = try await nodes[1].io.sockets.to("lobby").fetchSockets()
        #expect(lobby.map { $0.auth["name"] } == ["client 2"] && lobby[0].rooms.contains("lobby"))

        // Everyone but the lobby joins "hall", from node 0; a broadcast to the hall shows it.
        try await nodes[0].io.sockets.except("lobby").socketsJoin("hall")
        nodes[1].io.sockets.to("hall").emit("news", "hall")
        for client in clients[0..<2] { #expect(try await client.events(1)[0].prefix(2) == ["news", "hall"]) }
        #expect(try await clients[2].isQuiet(for: .milliseconds(200)))
        try await nodes[2].io.sockets.to("hall").socketsLeave("hall")
        #expect(try await nodes[2].io.sockets.to("hall").fetchSockets().isEmpty)

        try await nodes[1].io.sockets.to("lobby").disconnectSockets()
        #expect(try await clients[2].nextText() == "41")
        #expect(try await nodes[0].io.sockets.broadcastOperator.fetchSockets().count == 2)
    }

    @Test func serverSideEventsWithAcksCollectEveryOtherNodesAnswer() async throws {
        let nodes = try await threeNodes()
        for (index, node) in nodes.enumerated() {
            node.io.sockets.onServerSideEmitWithAck("who") { arguments in [.string("node \(index)"), arguments.first ?? .null] }
        }
        let answers = try await nodes[0].io.sockets.serverSideEmitWithAck("who", ["asked by 0"])
        #expect(Set(answers.compactMap { $0.first?.stringValue }) == ["node 1", "node 2"])
        #expect(answers.allSatisfy { $0.last == "asked by 0" })

        // A node that does not answer in time: the others' answers are not enough.
        nodes[2].io.sockets.onServerSideEmitWithAck("slow") { _ in
            try? await Task.sleep(for: .seconds(2))
            return []
        }
        nodes[1].io.sockets.onServerSideEmitWithAck("slow") { _ in [] }
        await #expect(throws: SocketIOClusterTimeout(received: 1, expected: 2)) {
            try await nodes[0].io.sockets.serverSideEmitWithAck("slow", [], timeout: .milliseconds(300))
        }
    }

    @Test func aNodeThatLeavesIsNoLongerCounted() async throws {
        let nodes = try await threeNodes()
        try await nodes[2].cluster.shutdown().get()
        #expect(try await nodes[0].cluster.refreshNodeCount().get() == 2)
        #expect(try await nodes[0].io.sockets.serverSideEmitWithAck("anyone", []).count == 1)
    }
}

extension RedisAdapterTests {
    /// Reads a `42<id>[…]` event and answers it with `answer`.
    func answer(_ client: TestClient, with answer: String) async throws {
        let text = try await client.nextText()
        #expect(text.hasPrefix("42"))
        let id = text.dropFirst(2).prefix { $0.isNumber }
        try await client.send("43\(id)[\"\(answer)\"]")
    }

    @Test func aBroadcastWithAcksCollectsTheAnswersOfClientsOnEveryNode() async throws {
        let nodes = try await threeNodes()
        var clients: [TestClient] = []
        for node in nodes {
            let client = try await TestClient.webSocket(to: node.io)
            try await client.connect()
            clients.append(client)
        }
        let asked = Task { await nodes[0].io.sockets.broadcastOperator.emitWithAck("question", arguments: ["ready?"], timeout: .seconds(5)) }
        for (index, client) in clients.enumerated() { try await answer(client, with: "yes \(index)") }
        let acks = await asked.value
        #expect(acks.isComplete && acks.expected == 3)
        #expect(Set(acks.responses.compactMap { $0.first?.stringValue }) == ["yes 0", "yes 1", "yes 2"])

        // One client on another node stays silent: the answers that came, and not complete.
        let partial = Task { await nodes[1].io.sockets.broadcastOperator.emitWithAck("question", arguments: [], timeout: .milliseconds(500)) }
        for client in clients[0..<2] { try await answer(client, with: "yes") }
        let late = await partial.value
        #expect(!late.isComplete && late.expected == 3 && late.responses.count == 2)
    }
}

extension RedisAdapterTests {
    @Test func aNodeWhoseHeartbeatStoppedIsDroppedAndVolatileBroadcastsCrossNodes() async throws {
        let nodes = try await threeNodes()
        // A node that stopped writing its heartbeat a minute ago, and one that just wrote.
        let admin = try await RedisConnection.connect(host: "127.0.0.1", port: redis.port, group: MultiThreadedEventLoopGroup.singleton).get()
        defer { admin.close() }
        let now = RedisCluster.milliseconds()
        _ = try await admin.send("HSET", "\(prefix)#nodes", "silent", String(now - 60_000), "alive", String(now)).get()
        #expect(try await nodes[0].cluster.refreshNodeCount().get() == 4)  // the silent one is not counted
        #expect(try await admin.send("HEXISTS", "\(prefix)#nodes", "silent").get().integer == 0)  // and is gone

        let bob = try await TestClient.webSocket(to: nodes[1].io)
        try await bob.connect()
        nodes[0].io.sockets.volatile.emit("tick", 1)
        #expect(try await bob.events(1)[0] == ["tick", 1])  // no offset: volatile packets are not kept
    }
}

extension RedisAdapterTests {
    @Test func aLogReadThatFailsIsRetried() async throws {
        let (one, two, bob, admin) = try await bobHearingNodeOne()
        defer { withExtendedLifetime(one) { admin.close() } }
        // Three broadcasts that reach the log and the sequence but no subscriber: the
        // publishing script, told of a channel nobody listens on.
        let keys = ClusterKeys(prefix: prefix, namespace: "/")
        var publish = ["EVAL", RedisCluster.publishScript, "2", keys.sequence, keys.log, keys.channel + "nobody", "1000"].map { ByteBuffer(string: $0) }
        for n in 1...3 {
            let packet = SocketIOPacket(type: .event, data: ["n", .number(Double(n))])
            publish.append(AdapterMessage.broadcast(ClusterMessage(packet: packet, filter: BroadcastFilter(), numbered: true, origin: .init(node: "elsewhere", serial: 1))).bytes)
        }
        _ = try await admin.send(publish).get()

        // Node two finds them missing while the log cannot be read (a string where the
        // stream was): its first read fails, and the log is back before the retry.
        _ = try await admin.send("RENAME", keys.log, keys.log + "away").get()
        _ = try await admin.send("SET", keys.log, "not a stream").get()
        let failuresBefore = try await wrongTypeErrors(admin)
        try #require(two.io.sockets.adapter as? ClusterAdapter).resynchronize()
        while try await wrongTypeErrors(admin) == failuresBefore {
            try await Task.sleep(for: .milliseconds(5))  // until Redis has refused the read
        }
        _ = try await admin.send("DEL", keys.log).get()
        _ = try await admin.send("RENAME", keys.log + "away", keys.log).get()
        #expect(try await bob.events(3).map { $0[1] } == [1, 2, 3])
    }

    /// How many commands Redis refused for a key of the wrong type.
    func wrongTypeErrors(_ admin: RedisConnection) async throws -> Int {
        let info = try await admin.send("INFO", "errorstats").get().string ?? ""
        guard let line = info.split(whereSeparator: \.isNewline).first(where: { $0.hasPrefix("errorstat_WRONGTYPE:") }) else { return 0 }
        return Int(line.split(separator: "=").last ?? "") ?? 0
    }
}
