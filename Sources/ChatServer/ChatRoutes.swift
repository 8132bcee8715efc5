import Chat
import EngineIO
import Foundation
import HTTPCommon
import HTTPTypes
import Hummingbird
import NIOCore
import NIOHTTPTypesHTTP1
import Prometheus
import SocketIO
import SocketIOHummingbird

/// The chat server's routes and middleware, with Socket.IO mounted beside them: the page and
/// its assets from `web/` (Hummingbird's file middleware: ETags, conditional requests,
/// content types; gzip by `CompressionMiddleware`), the official client bundle, the history
/// at `/messages`, `/healthz` and `/metrics`.
struct ChatRoutes {
    static let clientBundleVersion = "4.8.1"

    let io: SocketIOServer
    let store: any MessageStore
    let accessToken: String?
    let metrics: PrometheusCollectorRegistry?
    let webDirectory: String
    /// The official client bundle served at `/socket.io/socket.io.min.js`; nil sends the
    /// browser to the official CDN's file of the same version instead.
    let clientBundle: String?
    let allowedHosts: AllowedHosts

    func router() -> Router<BasicRequestContext> {
        let router = Router()
        // Other Host headers get 421, the page and Socket.IO alike (a DNS-rebinding guard).
        router.add(middleware: AllowedHostsMiddleware(allowedHosts: allowedHosts))
        router.add(middleware: PageHeadersMiddleware())
        router.add(middleware: CompressionMiddleware(enginePath: io.engine.configuration.path))
        router.add(middleware: FileMiddleware(webDirectory, cacheControl: .init([(MediaType(type: .any), [.noCache])]), searchForIndexHtml: true))
        router.addSocketIO(io)
        router.get("/socket.io/socket.io.min.js", use: clientBundleRoute())
        let history = ChatHistory(store: store)
        router.get("/messages") { [accessToken] request, _ -> Response in
            let query = URLQuery.parameters(ofURI: request.uri.description)
            if let accessToken {
                let bearer = request.headers[.authorization].map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" }
                guard let given = query["token"] ?? bearer, ChatService.constantTimeEqual(given, accessToken) else {
                    return Response(ChatHistory.json(.unauthorized, ["error": "not authorized"]))
                }
            }
            return Response(await history.respond(query: query))
        }
        router.get("/healthz") { [store] _, _ -> Response in
            let healthy = await store.ping()
            return Response(
                ChatHistory.json(healthy ? .ok : .serviceUnavailable, ["status": healthy ? "ok" : "degraded", "database": healthy ? "up" : "down"])
            )
        }
        if let metrics {
            router.get("/metrics") { _, _ -> Response in
                Response(
                    status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                    body: .init(byteBuffer: ByteBuffer(bytes: metrics.emitToBuffer()))
                )
            }
        }
        return router
    }

    /// The bundle through the file middleware (its ETag and caching), under its own name.
    private func clientBundleRoute() -> @Sendable (Request, BasicRequestContext) async throws -> Response {
        guard let clientBundle else {
            let location = "https://cdn.socket.io/\(Self.clientBundleVersion)/socket.io.min.js"
            return { _, _ in Response(status: .found, headers: [.location: location]) }
        }
        let url = URL(fileURLWithPath: clientBundle)
        let files = FileMiddleware<BasicRequestContext, LocalFileSystem>(
            url.deletingLastPathComponent().path, urlBasePath: "/socket.io", cacheControl: .init([(MediaType(type: .any), [.public, .maxAge(86400)])])
        )
        let path = "/socket.io/" + url.lastPathComponent
        return { request, context in
            var head = request.head
            head.path = path
            return try await files.handle(Request(head: head, body: request.body), context: context) { _, _ in
                throw HTTPError(.notFound)
            }
        }
    }
}

/// Refuses requests whose `Host` is not on the list (`--allowed-hosts`) with 421.
struct AllowedHostsMiddleware<Context: RequestContext>: RouterMiddleware {
    let allowedHosts: AllowedHosts

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard allowedHosts.allows(hostHeader: request.head.authority) else {
            return Response(
                status: .misdirectedRequest, headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(string: #"{"message":"Host not allowed"}"#))
            )
        }
        return try await next(request, context)
    }
}

/// What the page may load (itself, its WebSocket, the official client's CDN as a fallback),
/// and no content-type sniffing.
struct PageHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var contentSecurityPolicy: String {
        "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self' https://cdn.socket.io"
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[.xContentTypeOptions] = "nosniff"
        if response.headers[.contentType]?.hasPrefix("text/html") == true {
            response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        }
        return response
    }
}

extension Response {
    /// The chat's own answers (the history, health), as Hummingbird sends them.
    init(_ response: HTTPCommon.HTTPResponse) {
        var headers = HTTPFields(response.headers, splitCookie: false)
        headers[.contentLength] = String(response.body.readableBytes)
        self.init(status: .init(code: Int(response.status.code)), headers: headers, body: .init(byteBuffer: response.body))
    }
}
