import EngineIO
import Hummingbird
import HummingbirdCore
import SocketIO

/// Hummingbird servers that carry Socket.IO's WebSockets on the engine's own handlers.
extension HTTPServerBuilder {
    /// Hummingbird's HTTP/1.1 server with Socket.IO's WebSockets: build the `Application`
    /// with it and mount the routes with `router.addSocketIO(io)`.
    ///
    /// Requests go to the app's router as with `.http1()`. A WebSocket upgrade on the Socket.IO
    /// path goes through `router` first (so the app's middleware decides it too); once it is
    /// taken, its frames run on the engine's own handlers. An upgrade that is not a
    /// connection's first request is redirected to a new connection, as Hummingbird's own
    /// WebSocket server does; other WebSocket routes are not served by this server.
    ///
    /// - Parameters:
    ///   - io: the Socket.IO server mounted in the router.
    ///   - router: the router that decides upgrades: the app's own, usually.
    ///   - configuration: the HTTP/1.1 settings, as for `.http1(configuration:)`.
    public static func http1SocketIO<Context: RequestContext>(
        _ io: SocketIOServer,
        router: Router<Context>,
        configuration: HTTP1Channel.Configuration = .init()
    ) -> HTTPServerBuilder where Context.Source == ApplicationRequestContextSource {
        http1EngineIO(io.engine, router: router, configuration: configuration)
    }

    /// The same for an Engine.IO server used on its own (mount it with
    /// `router.addEngineIO(engine)`).
    public static func http1EngineIO<Context: RequestContext>(
        _ engine: EngineIOServer,
        router: Router<Context>,
        configuration: HTTP1Channel.Configuration = .init()
    ) -> HTTPServerBuilder where Context.Source == ApplicationRequestContextSource {
        let upgradeResponder = router.buildResponder()
        return HTTPServerBuilder { responder in
            SocketIOChannel(engine: engine, router: upgradeResponder, configuration: configuration, responder: responder)
        }
    }
}
