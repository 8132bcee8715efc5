import Foundation
import NIOCore
import NIOPosix
import RedisTestSupport
import Testing

@testable import Redis

/// The client against a real `redis-server` (Debian's, which the test command installs),
/// started here on a free port and restarted to play an outage.
@Suite(.serialized) struct RedisClientTests {
    static var available: Bool { RedisTestServer.isInstalled }

    @Test(.enabled(if: available)) func commandsArePipelinedAndAnsweredInOrder() async throws {
        let server = try RedisTestServer()
        let connection = try await RedisConnection.connect(host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton).get()
        defer { connection.close() }
        let answers = (0..<1000).map { _ in connection.send("INCR", "counter") }
        var values: [Int64] = []
        for answer in answers { values.append(try await answer.get().integer ?? -1) }
        #expect(values == Array(1...1000))
        #expect(try await connection.send("SET", "key", "value\r\nwith a newline").get() == .simpleString("OK"))
        #expect(try await connection.send("GET", "key").get().string == "value\r\nwith a newline")
        #expect(try await connection.send("GET", "missing").get().isNull)
        await #expect(throws: RedisError.self) { try await connection.send("INCR", "key").get() }  // an error answer
    }

    @Test(.enabled(if: available)) func everyCommandIsBoundedByItsTimeout() async throws {
        let server = try RedisTestServer()
        let connection = try await RedisConnection.connect(host: "127.0.0.1", port: server.port, group: MultiThreadedEventLoopGroup.singleton).get()
        defer { connection.close() }
        await #expect(throws: RedisError.timeout) { try await connection.send(["DEBUG", "SLEEP", "0.5"].map { ByteBuffer(string: $0) }, timeout: .milliseconds(50)).get() }
    }

    @Test(.enabled(if: available)) func theClientComesBackAfterAnOutageAndResubscribes() async throws {
        let server = try RedisTestServer()
        let group = MultiThreadedEventLoopGroup.singleton
        let (messages, received) = AsyncStream.makeStream(of: String.self)
        let (connects, connected) = AsyncStream.makeStream(of: Void.self)
        let subscriber = RedisClient(
            address: RedisAddress(host: "127.0.0.1", port: server.port), group: group,
            onMessage: { _, payload in received.yield(String(buffer: payload)) },
            onConnect: { connection in
                connection.send("SUBSCRIBE", "news").map { _ in connected.yield() }
            }
        )
        let publisher = RedisClient(address: RedisAddress(host: "127.0.0.1", port: server.port), group: group)
        subscriber.start()
        publisher.start()
        defer {
            subscriber.shutdown()
            publisher.shutdown()
        }
        var connectEvents = connects.makeAsyncIterator()
        var inbox = messages.makeAsyncIterator()
        await connectEvents.next()
        try await publishUntilConnected(publisher, "before")
        #expect(await inbox.next() == "before")

        server.stop()  // the outage
        await #expect(throws: RedisError.self) { try await publisher.send("PING").get() }
        try server.start()
        await connectEvents.next()  // reconnected, and subscribed again
        try await publishUntilConnected(publisher, "after")
        #expect(await inbox.next() == "after")
    }

    /// Publishes once the publisher's connection is back (it reconnects on its own).
    private func publishUntilConnected(_ publisher: RedisClient, _ text: String) async throws {
        for _ in 0..<100 {
            if let answer = try? await publisher.send("PUBLISH", "news", text).get(), answer.integer == 1 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw RedisError.disconnected
    }

    @Test func redisURLs() {
        #expect(RedisAddress(url: "redis://cache:6380") == RedisAddress(host: "cache", port: 6380))
        #expect(RedisAddress(url: "redis://127.0.0.1/") == RedisAddress(host: "127.0.0.1", port: 6379))
        #expect(RedisAddress(url: "http://x") == nil)
        #expect(RedisAddress(url: "redis://h:0") == nil)
    }

    @Test func backoffDoublesToFiveSeconds() {
        #expect(RedisClient.backoff(afterFailures: 1) == .milliseconds(100))
        #expect(RedisClient.backoff(afterFailures: 3) == .milliseconds(400))
        #expect(RedisClient.backoff(afterFailures: 20) == .seconds(5))
    }
}
