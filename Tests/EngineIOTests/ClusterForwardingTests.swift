import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

@testable import EngineIO

/// Two engines on real ports, joined by the test-only bus: every request of a session that
/// reaches the node that does not hold it is served there as on its own node, as behind a
/// balancer without sticky sessions.
@Suite struct ClusterForwardingTests {
    /// Echoes every message and records how sessions end.
    final class Echo: EngineIOServerDelegate, EngineIOSessionHandler, Sendable {
        let (closes, closed) = AsyncStream.makeStream(of: EngineIOCloseReason.self)
        func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler { self }
        func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) { session.send(message) }
        func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) { closed.yield(reason) }

        /// How the next session ends; nil if none ends within `timeout`.
        func nextClose(within timeout: Duration = .seconds(5)) async -> EngineIOCloseReason? {
            let closes = self.closes
            return await withTaskGroup(of: EngineIOCloseReason?.self) { group in
                group.addTask {
                    var iterator = closes.makeAsyncIterator()
                    return await iterator.next()
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                defer { group.cancelAll() }
                return await group.next() ?? nil
            }
        }
    }

    struct Node {
        let server: EngineIOServer
        let channel: any Channel
        let echo: Echo
        var port: Int { channel.localAddress!.port! }
    }

    let bus = InProcessBus()

    func node(_ id: String, pingInterval: TimeAmount = .seconds(25), slowConsumerTimeout: TimeAmount = .seconds(10)) async throws -> Node {
        var configuration = EngineIOConfiguration()
        configuration.cluster = bus.node(id)
        configuration.pingInterval = pingInterval
        configuration.slowConsumerTimeout = slowConsumerTimeout
        let echo = Echo()
        let server = EngineIOServer(configuration: configuration, delegate: echo)
        let channel = try await server.bind(host: "127.0.0.1", port: 0, group: MultiThreadedEventLoopGroup.singleton)
        return Node(server: server, channel: channel, echo: echo)
    }

    /// A polling session opened on `node`: its id.
    func handshake(on node: Node) async throws -> String {
        let client = try await RawClient.connect(port: node.port)
        defer { Task { await client.close() } }
        try await client.request("GET", "EIO=4&transport=polling")
        let open = try #require(try await client.response())
        return String(open.body.split(separator: "\"")[3])
    }

    @Test func aSessionIdNamesItsNode() async throws {
        let a = try await node("aaaa")
        let sid = try await handshake(on: a)
        #expect(sid.hasPrefix("aaaa"))
        #expect(a.server.forwarder?.owner(of: sid) == nil)
        #expect(a.server.forwarder?.owner(of: "bbbb" + sid.dropFirst(4)) == "bbbb")
        // Whatever a client sends, only letters and digits name a node.
        #expect(a.server.forwarder?.owner(of: "b#/b" + sid.dropFirst(4)) == nil)
        #expect(a.server.forwarder?.owner(of: "bbé" + sid.dropFirst(4)) == nil)
        #expect(a.server.forwarder?.owner(of: "bbbb") == nil)
    }

    @Test func pollingRequestsOnTheOtherNodeReachTheSession() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let sid = try await handshake(on: a)
        let client = try await RawClient.connect(port: b.port)
        try await client.request("POST", "EIO=4&transport=polling&sid=\(sid)", body: "4hello\u{1E}4again")
        #expect(try await client.response()?.body == "ok")
        try await client.request("GET", "EIO=4&transport=polling&sid=\(sid)")
        #expect(try await client.response()?.body == "4hello\u{1E}4again")
        // A GET held through the other node is answered when the session has something.
        try await client.request("GET", "EIO=4&transport=polling&sid=\(sid)")
        #expect(try await client.response(within: .milliseconds(200)) == nil)
        let other = try await RawClient.connect(port: a.port)
        try await other.request("POST", "EIO=4&transport=polling&sid=\(sid)", body: "4later")
        #expect(try await other.response()?.body == "ok")
        #expect(try await client.response()?.body == "4later")
        // The owner's answers are the reference's, wherever the request landed.
        try await client.request("GET", "EIO=4&transport=websocket&sid=\(sid)")
        #expect(try await client.response()?.body == #"{"code":3,"message":"Bad request"}"#)
        #expect(a.server.sessionCount == 1 && b.server.sessionCount == 0)
    }

    @Test func aHeldGetWhoseClientLeavesEndsTheSessionOnItsNode() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let sid = try await handshake(on: a)
        let client = try await RawClient.connect(port: b.port)
        try await client.request("GET", "EIO=4&transport=polling&sid=\(sid)")
        #expect(try await client.response(within: .milliseconds(200)) == nil)
        await client.close()
        #expect(await a.echo.nextClose() == .transportError)
        #expect(a.server.sessionCount == 0)
    }

    @Test func anUpgradeOnTheOtherNodeIsRelayedToTheSession() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let sid = try await handshake(on: a)
        let polling = try await RawClient.connect(port: b.port)
        try await polling.request("GET", "EIO=4&transport=polling&sid=\(sid)")
        let socket = try await RawClient.connect(port: b.port)
        #expect(try await socket.upgrade("EIO=4&transport=websocket&sid=\(sid)"))
        try await socket.send("2probe")
        #expect(try await socket.frame() == .text("3probe"))
        #expect(try await polling.response()?.body == "6")  // released by the upgrade check
        try await socket.send("5")
        try await socket.send("4over the relay")
        #expect(try await socket.frame() == .text("4over the relay"))
        try await polling.request("GET", "EIO=4&transport=polling&sid=\(sid)")
        #expect(try await polling.response()?.status == 400)
        // The session closes from its node: the client gets the close frame through the relay.
        await a.server.closeAllSessions()
        #expect(try await socket.frame() == .close(1001))
    }

    @Test func theRelayHeartbeatsAndCloses() async throws {
        let (a, b) = (try await node("aaaa", pingInterval: .milliseconds(100)), try await node("bbbb"))
        let socket = try await relayedSession(owner: a, front: b, echoed: false)
        #expect(try await socket.frame() == .text("2"))  // the owner's ping
        try await socket.send("3")
        #expect(try await socket.frame() == .text("2"))
        try await socket.send("1")  // the client closes
        #expect(await a.echo.nextClose() == .transportClose)
    }

    @Test func aRequestForANodeThatIsGoneIsAnsweredAtOnce() async throws {
        let b = try await node("bbbb")
        let client = try await RawClient.connect(port: b.port)
        try await client.request("GET", "EIO=4&transport=polling&sid=ccccsomewhereelse")
        let response = try #require(try await client.response())
        #expect(response.status == 400 && response.body == #"{"code":1,"message":"Session ID unknown"}"#)
        let socket = try await RawClient.connect(port: b.port)
        #expect(try await socket.upgrade("EIO=4&transport=websocket&sid=ccccsomewhereelse"))
        #expect(try await socket.frame() == .close(1008))
    }

    @Test func whenTheNodeOfARelayedSessionDiesItsClientIsToldAtOnce() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        // One session upgraded through the other node, one polling through it.
        let socket = try await relayedSession(owner: a, front: b)
        let polled = try await handshake(on: a)
        let polling = try await RawClient.connect(port: b.port)
        try await polling.request("GET", "EIO=4&transport=polling&sid=\(polled)")
        #expect(try await polling.response(within: .milliseconds(100)) == nil)  // held, on the owner
        bus.leave("aaaa")  // killed: it no longer listens
        // Not after the heartbeat's 45 s: the relay's node probes the owner every second.
        #expect(try await polling.response(within: .seconds(3))?.body == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(try await socket.frame(within: .seconds(3)) == .close(1001))
    }

    /// A session on `a` upgraded through `b`: the client's WebSocket. With `echoed`, a message
    /// has gone there and back, so the upgrade is complete on both nodes.
    func relayedSession(owner a: Node, front b: Node, echoed: Bool = true) async throws -> RawClient {
        try await relayedSessionAndID(owner: a, front: b, echoed: echoed).socket
    }

    func relayedSessionAndID(owner a: Node, front b: Node, echoed: Bool = true) async throws -> (sid: String, socket: RawClient) {
        let sid = try await handshake(on: a)
        let socket = try await RawClient.connect(port: b.port)
        #expect(try await socket.upgrade("EIO=4&transport=websocket&sid=\(sid)"))
        try await socket.send("2probe")
        #expect(try await socket.frame() == .text("3probe"))
        try await socket.send("5")
        guard echoed else { return (sid, socket) }
        try await socket.send("4one")
        #expect(try await socket.frame() == .text("4one"))
        return (sid, socket)
    }

    /// A relayed client that stops reading holds its session's producers back as a client of
    /// the owner's own sockets does: the front reports its socket's backlog to the owner.
    @Test(.timeLimit(.minutes(1))) func aRelayedClientThatReadsSlowlyHoldsItsProducersBack() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb", slowConsumerTimeout: .seconds(60)))
        let (sid, socket) = try await relayedSessionAndID(owner: a, front: b)
        let session = try #require(a.server.session(sid))
        try await socket.setReading(false)
        // Volatile packets go while the front's socket has room. Each of these is larger than
        // its bound (`maxOutboundBytes`): its backlog comes and goes as the kernel's buffers
        // take them, then stays once they are full. The owner hears of both: the producer
        // waits, and goes on only when the client reads again.
        let chunk = EngineIOOutboundPacket.message(.text(String(repeating: "x", count: 1 << 20)))
        var blocked: EventLoopFuture<Void>?
        for _ in 0..<200 where blocked == nil {
            if try await session.eventLoop.submit({ session.sendIfWritable(chunk) }).get() { continue }
            let waiting = try await session.eventLoop.submit { session.whenWritable() }.get()
            // A wait that the kernel's buffers end at once is not the one looked for.
            if await !Self.succeeds(waiting, within: .milliseconds(500)) { blocked = waiting }
        }
        let waiting = try #require(blocked, "the owner never heard that the client stopped reading")
        try await socket.setReading(true)
        try await waiting.get()  // the front's backlog drained: the producer goes on
        #expect(try await session.eventLoop.submit { session.sendIfWritable(chunk) }.get())
        #expect(a.server.sessionCount == 1)
    }

    /// Whether `future` succeeds within `timeout`.
    static func succeeds(_ future: EventLoopFuture<Void>, within timeout: TimeAmount) async -> Bool {
        let race = future.eventLoop.makePromise(of: Bool.self)
        let settled = NIOLockedValueBox(false)
        let settle: @Sendable (Bool) -> Void = { value in
            if settled.withLockedValue({ was in defer { was = true }; return !was }) { race.succeed(value) }
        }
        future.whenComplete { settle((try? $0.get()) != nil) }
        let timer = future.eventLoop.scheduleTask(in: timeout) { settle(false) }
        defer { timer.cancel() }
        return (try? await race.futureResult.get()) ?? false
    }

    @Test func aNodeThatStopsClosesTheWebSocketsItRelays() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let socket = try await relayedSession(owner: a, front: b)
        await b.server.closeAllSessions()  // b shuts down: the session lives on a
        #expect(try await socket.frame() == .close(1001))
        #expect(await a.echo.nextClose() == .transportClose)
    }

    /// A write to the client (its echo) or a message from the client, lost by the bus: the
    /// next one shows the gap, and neither side goes on as if it had it.
    @Test(arguments: [true, false]) func aMessageTheBusLostCutsTheRelayAndEndsTheSession(losingAWrite: Bool) async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let socket = try await relayedSession(owner: a, front: b)
        let lost = bus.loseNext { envelope in
            switch envelope {
            case .webSocketWrite: losingAWrite
            case .webSocketReceived: !losingAWrite
            default: false
            }
        }
        try await socket.send("4two")
        try await lost.get()
        try await socket.send("4three")
        // Not "4three" as if "4two" had come: the client is cut, and will recover.
        #expect(try await socket.frame() == .close(1011))
        #expect(await a.echo.nextClose() == .transportError)
    }

    @Test func aRelayWhoseCloseTheBusLostIsClosedByTheNextProbe() async throws {
        let (a, b) = (try await node("aaaa"), try await node("bbbb"))
        let socket = try await relayedSession(owner: a, front: b)
        bus.loseNext { if case .webSocketClose = $0 { true } else { false } }
        await a.server.closeAllSessions()
        #expect(try await socket.frame(within: .seconds(3)) == .close(1011))
    }

    @Test func writesOfOneBroadcastToSeveralRelaysCrossTheBusOnce() {
        let all = EngineIOOutboundPacket.message(.text("all"))
        let other = EngineIOOutboundPacket.message(.text("other"))
        let merged = SessionForwarder.mergingBroadcasts([
            .webSocketWrite(id: 1, sequence: 4, packets: [all]),
            .webSocketWrite(id: 2, sequence: 9, packets: [all]),
            .webSocketWrite(id: 3, sequence: 1, packets: [all]),
            .webSocketWrite(id: 1, sequence: 5, packets: [other]),
            .webSocketClose(id: 4, code: 1000),
            .webSocketWrite(id: 2, sequence: 10, packets: [other]),
            .webSocketWrite(id: 3, sequence: 2, packets: [all]),
        ])
        #expect(
            merged == [
                .webSocketBroadcast(targets: [.init(id: 1, sequence: 4), .init(id: 2, sequence: 9), .init(id: 3, sequence: 1)], packets: [all]),
                .webSocketWrite(id: 1, sequence: 5, packets: [other]),
                .webSocketClose(id: 4, code: 1000),  // nothing moves across another message
                .webSocketWrite(id: 2, sequence: 10, packets: [other]),
                .webSocketWrite(id: 3, sequence: 2, packets: [all]),
            ]
        )
    }

    @Test func theEnvelopeRoundTripsAndRefusesWhatIsMalformed() throws {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain")
        let head = HTTPRequestHead(version: .http1_1, method: .POST, uri: "/socket.io/?sid=x", headers: headers)
        let all: [ClusterEnvelope] = [
            .request(from: "aaaa", id: 7, head: head, body: ByteBuffer(string: "4hi")),
            .requestGone(from: "aaaa", id: 7),
            .response(id: 7, status: 200, headers: headers, body: ByteBuffer(string: "ok")),
            .webSocketOpened(from: "aaaa", id: 8, head: head),
            .webSocketReceived(from: "aaaa", id: 8, sequence: 3, binary: true, data: ByteBuffer(bytes: [1, 2])),
            .webSocketClosed(from: "aaaa", id: 8, error: true),
            .webSocketWritability(from: "aaaa", id: 8, writable: false),
            .webSocketWrite(id: 8, sequence: 4, packets: [.message(.text("a")), .message(.binary(ByteBuffer(bytes: [3])))]),
            .webSocketClose(id: 8, code: 1001),
            .webSocketBroadcast(targets: [.init(id: 1, sequence: 5), .init(id: 9, sequence: 2)], packets: [.message(.text("all"))]),
            .probe(from: "aaaa", relays: [1, 2]),
            .batch([.probe(from: "aaaa", relays: []), .webSocketClose(id: 8, code: 1001), .requestGone(from: "aaaa", id: 7)]),
        ]
        for envelope in all {
            let encoded = envelope.encoded()
            #expect(ClusterEnvelope(decoding: encoded) == envelope)
            // Every truncation, and a byte too many, is refused rather than misread.
            for length in 0..<encoded.readableBytes {
                #expect(ClusterEnvelope(decoding: encoded.getSlice(at: encoded.readerIndex, length: length)!) == nil)
            }
            var longer = encoded
            longer.writeInteger(UInt8(0))
            #expect(ClusterEnvelope(decoding: longer) == nil)
        }
        // A count of four billion fields costs nothing before the bytes run out.
        var huge = ByteBuffer(bytes: [7])
        huge.writeInteger(UInt64(1))
        huge.writeInteger(UInt32.max)
        #expect(ClusterEnvelope(decoding: huge) == nil)
        // A batch in a batch is refused: nesting cannot make decoding recurse.
        var nested = ByteBuffer(bytes: [10])
        nested.writeInteger(UInt32(1))
        let inner = ClusterEnvelope.batch([.webSocketClose(id: 1, code: 1000)]).encoded()
        nested.writeInteger(UInt32(inner.readableBytes))
        nested.writeImmutableBuffer(inner)
        #expect(ClusterEnvelope(decoding: nested) == nil)
        #expect(ClusterEnvelope(decoding: ClusterEnvelope.batch([.batch([.webSocketClose(id: 1, code: 1000)])]).encoded()) == nil)
    }
}
