// The README's first example, and the DocC article "Mounting in Hummingbird": Socket.IO in a
// Hummingbird app, behind the app's own authentication. The interop tests build and run it
// (test_samples.py), and check that the README shows this code (between the markers) as it is.

// README begin
import Foundation
import Hummingbird
import ServiceLifecycle
import SocketIO
import SocketIOHummingbird

/// The app's request context: its middleware puts the signed-in user there.
struct AppContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    var user: String?
    init(source: ApplicationRequestContextSource) { coreContext = .init(source: source) }
}

/// The app's authentication (a stand-in: the name after "Bearer"), for its routes and Socket.IO alike.
struct Authenticate: RouterMiddleware {
    func handle(_ request: Request, context: AppContext, next: (Request, AppContext) async throws -> Response) async throws -> Response {
        guard let user = request.headers[.authorization]?.split(separator: " ").last, !user.isEmpty else { throw HTTPError(.unauthorized) }
        var context = context
        context.user = String(user)
        return try await next(request, context)
    }
}

let io = SocketIOServer()
io.sockets.onConnection { socket in
    let user = socket.handshake.hostContext(as: String.self) ?? "?"  // the user the middleware established
    socket.emit("welcome", .string(user))
    socket.on("chat message") { event in io.sockets.emit("chat message", arguments: [.string(user)] + event.arguments) }
}
let router = Router(context: AppContext.self)
router.add(middleware: Authenticate())
router.get("/hello") { _, context in "Hello, \(context.user ?? "?"), from the app's own route\n" }
router.addSocketIO(io) { _, context in context.user }  // behind the middleware; sessions keep the user
let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 3000
let app = Application(router: router, server: .http1SocketIO(io, router: router), configuration: .init(address: .hostname("0.0.0.0", port: port)))
// On SIGTERM the group stops io first (every session closed with "server shutting down"), then the app.
try await ServiceGroup(services: [app, io], gracefulShutdownSignals: [.sigterm, .sigint], logger: app.logger).run()
// README end
