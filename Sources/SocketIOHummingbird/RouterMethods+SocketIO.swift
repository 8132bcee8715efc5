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
    /// own routes and behind the middleware added before it: what that middleware puts in
    /// the request context (an authenticated user, say) reaches each socket's handshake
    /// (`socket.handshake.requestContext(as:)`), and a request it refuses never opens a
    /// session. The app's server must be built with `.http1SocketIO(io, router:)`, which
    /// runs the WebSockets.
    ///
    /// ```swift
    /// let io = SocketIOServer()
    /// let router = Router()
    /// router.addSocketIO(io)
    /// let app = Application(router: router, server: .http1SocketIO(io, router: router))
    /// try await app.runService()
    /// ```
    @discardableResult
    public func addSocketIO(_ io: SocketIOServer) -> Self {
        addEngineIO(io.engine)
    }

    /// Mounts an Engine.IO server used on its own at its configured path, as `addSocketIO`
    /// mounts Socket.IO's; its server is built with `.http1EngineIO(engine, router:)`.
    @discardableResult
    public func addEngineIO(_ engine: EngineIOServer) -> Self {
        let path = RouterPath(engine.configuration.path)
        // Every method: the engine answers the ones it does not take as the reference does.
        for method in [HTTPRequest.Method.get, .post, .options, .head, .put, .delete, .patch] {
            on(path, method: method) { request, context in
                try await EngineIORoute.respond(to: request, context: context, engine: engine)
            }
        }
        return self
    }
}

/// The Engine.IO route: hands each request to the engine with the app's request context.
enum EngineIORoute {
    static func respond<Context: RequestContext>(to request: Request, context: Context, engine: EngineIOServer) async throws -> Response {
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
        let hostRequest = EngineIOHostRequest(head: head, remoteAddress: connection.remoteAddress, hostContext: context)
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
