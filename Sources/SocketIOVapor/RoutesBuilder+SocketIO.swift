import EngineIO
import SocketIO
import Vapor

/// Socket.IO's routes in a Vapor app, behind the middleware of the group they are added to.
extension RoutesBuilder {
    /// Mounts Socket.IO at its configured path (`/socket.io/` by default), beside the app's
    /// own routes and behind the middleware of this group: what that middleware established
    /// (an authenticated user in `request.auth`, say) reaches each socket's handshake
    /// (`socket.handshake.vaporRequest`), and a request it refuses never opens a session.
    /// WebSocket upgrades go through the same routes, then Vapor's upgrader hands the
    /// connection to the engine's own frame handlers.
    ///
    /// ```swift
    /// let io = SocketIOServer()
    /// app.socketIO(io)  // or: app.grouped(UserAuthenticator()).socketIO(io)
    /// app.lifecycle.use(SocketIOLifecycle(io))
    /// ```
    ///
    /// Polling bodies are streamed, not collected with Vapor's 16 KB default: a POST may be
    /// as large as the engine's `maxHttpBufferSize`.
    public func socketIO(_ io: SocketIOServer) {
        engineIO(io.engine)
    }

    /// Mounts an Engine.IO server used on its own at its configured path, as `socketIO(_:)`
    /// mounts Socket.IO's.
    public func engineIO(_ engine: EngineIOServer) {
        let path = engine.configuration.path.split(separator: "/").map { PathComponent(stringLiteral: String($0)) }
        // Every method: the engine answers the ones it does not take as the reference does.
        // HEAD goes to the GET route, as Vapor routes it.
        for method in [HTTPMethod.GET, .POST, .OPTIONS, .PUT, .DELETE, .PATCH] {
            on(method, path, body: .stream) { request async -> Response in
                await EngineIORoute.respond(to: request, engine: engine)
            }
        }
    }
}
