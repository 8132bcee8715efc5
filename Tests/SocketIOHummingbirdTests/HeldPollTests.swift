import Hummingbird
import HummingbirdTesting
import NIOCore
import NIOPosix
import SocketIO
import SocketIOHummingbird
import Testing

/// A polling GET held by the Hummingbird mount ends its session when its client gives up,
/// as on the engine's own listener (the official suite's "closes the session upon cancelled
/// polling request"), not only when the heartbeat lapses.
@Suite struct HeldPollTests {
    @Test func aHeldGetWhoseClientLeavesEndsItsSession() async throws {
        let io = SocketIOServer()  // pings every 25 s: the heartbeat cannot be what ends it
        let router = Router()
        router.addSocketIO(io)
        let app = Application(router: router, server: .http1SocketIO(io, router: router))
        try await app.test(.live) { client in
            let open = try await client.execute(uri: "/socket.io/?EIO=4&transport=polling", method: .get)
            let text = String(buffer: open.body)
            let sid = try #require(text.split(separator: "\"").dropFirst(3).first.map(String.init))
            let query = "/socket.io/?EIO=4&transport=polling&sid=\(sid)"
            #expect(try await client.execute(uri: query, method: .post, body: ByteBuffer(string: "6")).status == .ok)

            // Nothing to send: this GET is held. Its client then closes the connection.
            let port = try #require(client.port)
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
            try await channel.writeAndFlush(ByteBuffer(string: "GET \(query) HTTP/1.1\r\nHost: localhost\r\n\r\n"))
            try await channel.close()

            // The session ends: a noop posted to it is refused, well before any heartbeat.
            var status = HTTPResponse.Status.ok
            for _ in 0..<100 where status == .ok {
                status = try await client.execute(uri: query, method: .post, body: ByteBuffer(string: "6")).status
                if status == .ok { try await Task.sleep(for: .milliseconds(20)) }
            }
            #expect(status == .badRequest)
        }
    }
}
