import Foundation
import NIOCore
import NIOPosix
import RedisTestSupport
import Testing

@testable import Redis

/// The client behind Redis Sentinel, against Debian's `redis-server` and `redis-sentinel`: a
/// primary, its replica and one sentinel, all started here.
@Suite(.serialized) struct RedisSentinelTests {
    static var available: Bool { RedisTestServer.isSentinelInstalled }

    @Test func sentinelURLs() {
        #expect(RedisEndpoint(url: "redis://cache:6380") == .server(RedisAddress(host: "cache", port: 6380)))
        #expect(
            RedisEndpoint(url: "redis-sentinel://s1,s2:26380/chat")
                == .sentinel([RedisAddress(host: "s1", port: 26379), RedisAddress(host: "s2", port: 26380)], primaryName: "chat"))
        #expect(RedisEndpoint(url: "redis-sentinel://s1:26379/chat")?.description == "redis-sentinel://s1:26379/chat")
        for wrong in ["redis-sentinel://s1", "redis-sentinel://s1/", "redis-sentinel://s1,/chat", "redis-sentinel:///chat", "redis-sentinel://s1:0/chat", "sentinel://s1/chat"] {
            #expect(RedisEndpoint(url: wrong) == nil, "\(wrong)")
        }
    }

    @Test func sentinelAnswers() {
        #expect(SentinelLookup.address(fromReply: .array([.bulk("10.0.0.2"), .bulk("6380")])) == RedisAddress(host: "10.0.0.2", port: 6380))
        #expect(SentinelLookup.address(fromReply: .array(nil)) == nil)  // a name it does not monitor
        #expect(SentinelLookup.address(fromReply: .array([.bulk("h"), .bulk("x")])) == nil)
        #expect(SentinelLookup.isPrimary(roleReply: .array([.bulk("master"), .integer(0), .array([])])))
        #expect(!SentinelLookup.isPrimary(roleReply: .array([.bulk("slave"), .bulk("h"), .integer(1)])))
    }

    /// The primary is killed: the sentinel promotes the replica, and the client, which asks
    /// the sentinels on every reconnect (a dead one first: they are tried in turn), finds it.
    @Test(.enabled(if: available)) func theClientFollowsAFailover() async throws {
        let primary = try RedisTestServer()
        let replica = try RedisTestServer(replicaOf: primary.port)
        let sentinel = try RedisTestServer.sentinel(monitoring: primary.port, name: "chat")
        let gone = try RedisTestServer()
        gone.stop()  // a sentinel that is down
        let group = MultiThreadedEventLoopGroup.singleton
        let (connects, connected) = AsyncStream.makeStream(of: Void.self)
        let (messages, received) = AsyncStream.makeStream(of: String.self)
        let endpoint = RedisEndpoint.sentinel(
            [RedisAddress(host: "127.0.0.1", port: gone.port), RedisAddress(host: "127.0.0.1", port: sentinel.port)], primaryName: "chat")
        let subscriber = RedisClient(
            endpoint: endpoint, group: group, onMessage: { _, payload in received.yield(String(buffer: payload)) },
            onConnect: { connection in connection.send("SUBSCRIBE", "news").map { _ in connected.yield() } }
        )
        let client = RedisClient(endpoint: endpoint, group: group)
        subscriber.start()
        client.start()
        defer {
            subscriber.shutdown()
            client.shutdown()
        }
        var connectEvents = connects.makeAsyncIterator()
        var inbox = messages.makeAsyncIterator()
        await connectEvents.next()
        try await publishWhenConnected(client, "before")
        #expect(await inbox.next() == "before")
        #expect(try await client.send("CONFIG", "GET", "port").get().array?.last?.string == "\(primary.port)")

        primary.stop()
        await connectEvents.next()  // the subscriber is back, on the promoted replica
        try await publishWhenConnected(client, "after")
        #expect(await inbox.next() == "after")
        #expect(try await client.send("CONFIG", "GET", "port").get().array?.last?.string == "\(replica.port)")
        #expect(try await client.send("SET", "key", "written").get() == .simpleString("OK"))
    }

    /// A primary demoted while the client stays connected (as on the far side of a partition)
    /// answers writes with READONLY: the client drops that connection, and does not take one
    /// to a server that is not a primary, whatever the sentinels say.
    @Test(.enabled(if: available)) func aDemotedPrimaryIsLeft() async throws {
        let primary = try RedisTestServer()
        let other = try RedisTestServer()
        let sentinel = try RedisTestServer.sentinel(monitoring: primary.port, name: "chat")
        let group = MultiThreadedEventLoopGroup.singleton
        let client = RedisClient(endpoint: .sentinel([RedisAddress(host: "127.0.0.1", port: sentinel.port)], primaryName: "chat"), group: group)
        client.start()
        defer { client.shutdown() }
        try await sendWhenConnected(client, "SET", "key", "1")

        let admin = try await RedisConnection.connect(host: "127.0.0.1", port: primary.port, group: group).get()
        defer { admin.close() }
        _ = try await admin.send("REPLICAOF", "127.0.0.1", "\(other.port)").get()
        await #expect(throws: RedisError.server("READONLY You can't write against a read only replica.")) {
            try await client.send("SET", "key", "2").get()
        }
        for _ in 0..<100 where client.isConnected { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!client.isConnected)
        // Not taken again while the server the sentinel names is a replica.
        await #expect(throws: RedisError.self) { try await SentinelLookup.confirmPrimary(admin, timeout: .seconds(1)).get() }
        _ = try await admin.send("REPLICAOF", "NO", "ONE").get()
        try await SentinelLookup.confirmPrimary(admin, timeout: .seconds(1)).get()
        try await sendWhenConnected(client, "SET", "key", "3")
    }

    private func publishWhenConnected(_ client: RedisClient, _ text: String) async throws {
        try await sendWhenConnected(client, "PUBLISH", "news", text) { $0.integer == 1 }
    }

    /// Sends once the client's connection is up and the answer is as wanted (it reconnects on
    /// its own, at most a second apart behind sentinels).
    private func sendWhenConnected(
        _ client: RedisClient, _ arguments: String..., until wanted: (RESPValue) -> Bool = { _ in true }
    ) async throws {
        for _ in 0..<200 {
            if let answer = try? await client.send(arguments.map { ByteBuffer(string: $0) }).get(), wanted(answer) { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError.disconnected
    }
}
