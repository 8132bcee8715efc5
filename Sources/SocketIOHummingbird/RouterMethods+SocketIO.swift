import EngineIO
import HTTPCommon
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTP1
import NIOHTTPTypesHTTP1
import SocketIO

/// Socket.IO's routes in a Hummingbird router, behind the middleware added before them.
extension RouterMethods {
    /// Mounts Socket.IO at its configured path (`/socket.io/` by default), beside the app's
    /// own routes and behind the middleware added before it: a request that middleware
    /// refuses never opens a session. The app's server must be built with
    /// `.http1SocketIO(io, router:)`, which runs the WebSockets.
    ///
    /// ```swift
    /// let io = SocketIOServer()
    /// let router = Router()
    /// router.addSocketIO(io)
    /// let app = Application(router: router, server: .http1SocketIO(io, router: router))
    /// try await app.runService()
    /// ```
    ///
    /// A session keeps nothing of the request that opened it: a request context lives as
    /// long as its request. `addSocketIO(_:keeping:)` keeps what the handshake needs.
    @discardableResult
    public func addSocketIO(_ io: SocketIOServer) -> Self {
        mount(io.engine, keeping: nil)
    }

    /// Mounts Socket.IO as `addSocketIO(_:)` does, and keeps in the handshake of each
    /// session what `keep` takes from the request that opened it, once the app's middleware
    /// has run (the user it authenticated, say), for as long as the session lives:
    ///
    /// ```swift
    /// router.addSocketIO(io) { _, context in context.user }
    /// io.sockets.onConnection { socket in
    ///     let user = socket.handshake.hostContext(as: User.self)
    /// }
    /// ```
    @discardableResult
    public func addSocketIO<Kept: Sendable>(_ io: SocketIOServer, keeping keep: @escaping @Sendable (Request, Context) -> Kept?) -> Self {
        mount(io.engine, keeping: { request, context in keep(request, context) })
    }

    /// Mounts an Engine.IO server used on its own at its configured path, as `addSocketIO`
    /// mounts Socket.IO's; its server is built with `.http1EngineIO(engine, router:)`.
    @discardableResult
    public func addEngineIO(_ engine: EngineIOServer) -> Self {
        mount(engine, keeping: nil)
    }

    private func mount(_ engine: EngineIOServer, keeping keep: (@Sendable (Request, Context) -> (any Sendable)?)?) -> Self {
        let path = RouterPath(engine.configuration.path)
        // Every method: the engine answers the ones it does not take as the reference does.
        for method in [HTTPRequest.Method.get, .post, .options, .head, .put, .delete, .patch] {
            on(path, method: method) { request, context in
                try await EngineIORoute.respond(to: request, context: context, engine: engine, keep: keep)
            }
        }
        return self
    }
}

/// The Engine.IO route: hands each request to the engine with the app's request context.
enum EngineIORoute {
    static func respond<Context: RequestContext>(
        to request: Request, context: Context, engine: EngineIOServer, keep: (@Sendable (Request, Context) -> (any Sendable)?)?
    ) async throws -> Response {
        guard let connection = HostConnection.current else {
            throw HTTPError(.internalServerError, message: "Socket.IO runs on a server built with .http1SocketIO(io, router:)")
        }
        var requestHeaders = HTTPHeaders(request.headers)
        // HTTPTypes keeps the Host header as the request's authority; the engine checks it
        // (allowed hosts, same-origin requests), as the reference reads `Host`.
        if let authority = request.head.authority, !requestHeaders.contains(name: "host") {
            requestHeaders.add(name: "host", value: authority)
        }
        let head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method.rawValue), uri: request.uri.description, headers: requestHeaders
        )
        let hostRequest = EngineIOHostRequest(head: head, remoteAddress: connection.remoteAddress, hostContext: keep?(request, context))
        if let upgrade = connection.upgrade {
            // Asked by the channel's upgrader, behind the app's middleware: decide, answer nothing.
            if engine.acceptsWebSocket(hostRequest) {
                upgrade.decide(.accept(hostRequest))
            } else {
                let refusal = await engine.respond(to: hostRequest, on: connection.watcher) { _ in ByteBuffer() }
                upgrade.decide(.refuse(refusal))
            }
            return Response(status: .ok)
        }
        var request = request
        let answer = await engine.respond(to: hostRequest, on: connection.watcher) { limit in
            try? await request.collectBody(upTo: limit)
        }
        var headers = HTTPFields(answer.headers, splitCookie: false)
        headers[.contentLength] = String(answer.body.readableBytes)
        return Response(
            status: .init(code: Int(answer.status.code)),
            headers: headers,
            body: .init(byteBuffer: answer.body)
        )
    }
}
