// The DocC article "Mounting in Vapor": Socket.IO in a Vapor app, behind the app's own
// authentication. The interop tests build and run it (test_samples.py), and check that the
// article shows this code (between the markers) as it is.

// Article begin
import SocketIO
import SocketIOVapor
import Vapor

/// The app's signed-in user.
struct User: Authenticatable {
    let name: String
}

/// The app's authentication (a stand-in: the name after "Bearer"), for its routes and Socket.IO alike.
struct Authenticate: AsyncBearerAuthenticator {
    func authenticate(bearer: BearerAuthorization, for request: Request) async throws {
        request.auth.login(User(name: bearer.token))
    }
}

let io = SocketIOServer()
io.sockets.onConnection { socket in
    let user = socket.handshake.hostContext(as: User.self)?.name ?? "?"  // the user the middleware established
    socket.emit("welcome", .string(user))
    socket.on("chat message") { event in io.sockets.emit("chat message", arguments: [.string(user)] + event.arguments) }
}
let app = try await Application.make(.detect())
app.http.server.configuration.hostname = "0.0.0.0"
app.http.server.configuration.port = Environment.get("PORT").flatMap(Int.init) ?? 3000
let guarded = app.grouped(Authenticate(), User.guardMiddleware())
guarded.get("hello") { request in "Hello, \(try request.auth.require(User.self).name), from the app's own route\n" }
guarded.socketIO(io) { request in request.auth.get(User.self) }  // behind the group's middleware; sessions keep the user
app.lifecycle.use(SocketIOLifecycle(io))  // on shutdown, every session closes with "server shutting down"
try await app.execute()
try await app.asyncShutdown()
// Article end
