import EngineIO
import Hummingbird
import HummingbirdTesting
import NIOCore
import SocketIO
import SocketIOHummingbird
import Testing

/// A request context that shows a route the connection its request came on.
private struct ChannelContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }
}

@Suite struct ConnectionOptionsTests {
    /// Hummingbird's connections must read as the engine's own do: with NIO's default they
    /// each keep a 2 KiB read buffer, which idle WebSockets hold for their whole life.
    @Test func connectionsReadWithTheEnginesAllocator() async throws {
        let io = SocketIOServer()
        let router = Router(context: ChannelContext.self)
        router.get("/allocator") { _, context -> String in
            let allocator = try await context.channel.getOption(.recvAllocator).get()
            guard let adaptive = allocator as? AdaptiveRecvByteBufferAllocator else { return "\(type(of: allocator))" }
            return "\(adaptive.minimum) \(adaptive.initial) \(adaptive.maximum)"
        }
        router.addSocketIO(io)
        let app = Application(router: router, server: .http1SocketIO(io, router: router))
        try await app.test(.live) { client in
            let response = try await client.execute(uri: "/allocator", method: .get)
            let expected = EngineIOServer.receiveAllocator
            #expect(String(buffer: response.body) == "\(expected.minimum) \(expected.initial) \(expected.maximum)")
        }
    }
}
