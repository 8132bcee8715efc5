import EngineIO
import SocketIO
import Vapor

/// Socket.IO's routes in a Vapor app, behind the middleware of the group they are added to.
extension RoutesBuilder {
    /// Mounts Socket.IO at its configured path (`/socket.io/` by default), beside the app's
    /// own routes and behind the middleware of this group: a request that middleware refuses
    /// never opens a session. WebSocket upgrades go through the same routes, then Vapor's
    /// upgrader hands the connection to the engine's own frame handlers.
    ///
    /// ```swift
    /// let io = SocketIOServer()
    /// app.socketIO(io)
    /// app.lifecycle.use(SocketIOLifecycle(io))
    /// ```
    ///
    /// Polling bodies are streamed, not collected with Vapor's 16 KB default: a POST may be
    /// as large as the engine's `maxHttpBufferSize`. A session keeps nothing of the request
    /// that opened it; `socketIO(_:keeping:)` keeps what the handshake needs.
    public func socketIO(_ io: SocketIOServer) {
        mount(io.engine, keeping: nil)
    }

    /// Mounts Socket.IO as `socketIO(_:)` does, and keeps in the handshake of each session
    /// what `keep` takes from the request that opened it, once the group's middleware has
    /// run (the user it authenticated, say), for as long as the session lives:
    ///
    /// ```swift
    /// app.grouped(UserAuthenticator()).socketIO(io) { request in request.auth.get(User.self) }
    /// io.sockets.onConnection { socket in
    ///     let user = socket.handshake.hostContext(as: User.self)
    /// }
    /// ```
    public func socketIO<Kept: Sendable>(_ io: SocketIOServer, keeping keep: @escaping @Sendable (Request) -> Kept?) {
        mount(io.engine, keeping: { request in keep(request) })
    }

    /// Mounts an Engine.IO server used on its own at its configured path, as `socketIO(_:)`
    /// mounts Socket.IO's.
    public func engineIO(_ engine: EngineIOServer) {
        mount(engine, keeping: nil)
    }

    private func mount(_ engine: EngineIOServer, keeping keep: (@Sendable (Request) -> (any Sendable)?)?) {
        let path = engine.configuration.path.split(separator: "/").map { PathComponent(stringLiteral: String($0)) }
        // Every method: the engine answers the ones it does not take as the reference does.
        // HEAD goes to the GET route, as Vapor routes it.
        for method in [HTTPMethod.GET, .POST, .OPTIONS, .PUT, .DELETE, .PATCH] {
            on(method, path, body: .stream) { request async -> Response in
                await EngineIORoute.respond(to: request, engine: engine, keep: keep)
            }
        }
    }
}
