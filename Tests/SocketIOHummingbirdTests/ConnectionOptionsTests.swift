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
    /// Hummingbird's connections must be set up as the engine's own are. With Hummingbird's
    /// defaults, Nagle's algorithm holds small frames back, and each connection keeps a
    /// 2 KiB read buffer, which idle WebSockets hold for their whole life.
    @Test func connectionsAreSetUpAsOnTheEnginesListener() async throws {
        let io = SocketIOServer()
        let router = Router(context: ChannelContext.self)
        router.get("/options") { _, context -> String in
            let noDelay = try await context.channel.getOption(.socketOption(.tcp_nodelay)).get()
            let allocator = try await context.channel.getOption(.recvAllocator).get()
            guard let adaptive = allocator as? AdaptiveRecvByteBufferAllocator else { return "\(type(of: allocator))" }
            return "nodelay \(noDelay != 0), reads \(adaptive.minimum) \(adaptive.initial) \(adaptive.maximum)"
        }
        router.addSocketIO(io)
        let app = Application(router: router, server: .http1SocketIO(io, router: router))
        try await app.test(.live) { client in
            let response = try await client.execute(uri: "/options", method: .get)
            let expected = EngineIOServer.receiveAllocator
            #expect(String(buffer: response.body) == "nodelay true, reads \(expected.minimum) \(expected.initial) \(expected.maximum)")
        }
    }
}
