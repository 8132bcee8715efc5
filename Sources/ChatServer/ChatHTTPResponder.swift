import Chat
import EngineIO
import HTTPCommon
import Foundation
import NIOCore
import NIOHTTP1
import Prometheus
import SocketIO

/// The chat server's plain HTTP: the page and its assets from `web/` (read once at start,
/// so no file is read on an event loop), the official client bundle at
/// `/socket.io/socket.io.min.js`, the history at `/messages`, and `/healthz`.
struct ChatHTTPResponder: HTTPFallbackResponder {
    static let clientBundleVersion = "4.8.1"

    struct File: Sendable {
        let contentType: String
        let body: ByteBuffer
        let etag: String
    }

    let files: [String: File]
    let clientBundle: File?
    let history: ChatHistory
    let store: any MessageStore
    let accessToken: String?
    let metrics: PrometheusCollectorRegistry?

    init(webDirectory: String, clientBundlePath: String?, store: any MessageStore, accessToken: String?, metrics: PrometheusCollectorRegistry?) {
        self.accessToken = accessToken
        self.metrics = metrics
        var files: [String: File] = [:]
        if let names = FileManager.default.enumerator(atPath: webDirectory) {
            for case let name as String in names {
                let path = webDirectory + "/" + name
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue,
                    let data = FileManager.default.contents(atPath: path)
                else { continue }
                files["/" + name] = Self.file(data, name: name)
            }
        }
        if let index = files["/index.html"] { files["/"] = index }
        self.files = files
        self.clientBundle = clientBundlePath.flatMap { FileManager.default.contents(atPath: $0) }.map { Self.file($0, name: "socket.io.min.js") }
        self.history = ChatHistory(store: store)
        self.store = store
    }

    private static func file(_ data: Data, name: String) -> File {
        var hasher = Hasher()
        hasher.combine(data)
        return File(contentType: contentType(for: name), body: ByteBuffer(bytes: data), etag: "\"\(String(UInt(bitPattern: hasher.finalize()), radix: 36))\"")
    }

    static func contentType(for name: String) -> String {
        switch name.split(separator: ".").last.map(String.init) ?? "" {
        case "html": "text/html; charset=utf-8"
        case "css": "text/css; charset=utf-8"
        case "js", "mjs": "text/javascript; charset=utf-8"
        case "json": "application/json; charset=utf-8"
        case "svg": "image/svg+xml"
        case "png": "image/png"
        case "ico": "image/x-icon"
        case "webmanifest": "application/manifest+json"
        default: "application/octet-stream"
        }
    }

    func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let path = String(head.uri.prefix { $0 != "?" })
        let query = URLQuery.parameters(ofURI: head.uri)
        guard head.method == .GET || head.method == .HEAD else {
            return eventLoop.makeSucceededFuture(HTTPResponse(status: .methodNotAllowed, headers: ["allow": "GET, HEAD"]))
        }
        switch path {
        case "/messages":
            if let accessToken {
                let bearer = head.headers.first(name: "authorization").map { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : "" }
                guard let given = query["token"] ?? bearer, ChatService.constantTimeEqual(given, accessToken) else {
                    return eventLoop.makeSucceededFuture(ChatHistory.json(.unauthorized, ["error": "not authorized"]))
                }
            }
            let promise = eventLoop.makePromise(of: HTTPResponse.self)
            promise.completeWithTask { await history.respond(query: query) }
            return promise.futureResult
        case "/metrics":
            guard let metrics else { return eventLoop.makeSucceededFuture(HTTPResponse(status: .notFound)) }
            let body = ByteBuffer(bytes: metrics.emitToBuffer())
            return eventLoop.makeSucceededFuture(HTTPResponse(status: .ok, headers: ["content-type": "text/plain; version=0.0.4; charset=utf-8"], body: body))
        case "/healthz":
            let promise = eventLoop.makePromise(of: HTTPResponse.self)
            promise.completeWithTask {
                let healthy = await store.ping()
                return ChatHistory.json(healthy ? .ok : .serviceUnavailable, ["status": healthy ? "ok" : "degraded", "database": healthy ? "up" : "down"])
            }
            return promise.futureResult
        case "/socket.io/socket.io.min.js":
            guard let clientBundle else {
                // No local copy: send the browser to the official CDN's file of the same version.
                let location = "https://cdn.socket.io/\(Self.clientBundleVersion)/socket.io.min.js"
                return eventLoop.makeSucceededFuture(HTTPResponse(status: .found, headers: ["location": location]))
            }
            return eventLoop.makeSucceededFuture(serve(clientBundle, head: head, cacheControl: "public, max-age=86400"))
        default:
            // Only files read from web/ at start exist: nothing outside it can be named.
            guard let file = files[path] else {
                return eventLoop.makeSucceededFuture(HTTPResponse(status: .notFound, headers: ["content-type": "text/plain; charset=utf-8"], body: ByteBuffer(string: "Not Found")))
            }
            return eventLoop.makeSucceededFuture(serve(file, head: head, cacheControl: "no-cache"))
        }
    }

    private func serve(_ file: File, head: HTTPRequestHead, cacheControl: String) -> HTTPResponse {
        var headers: HTTPHeaders = [
            "content-type": file.contentType, "etag": file.etag, "cache-control": cacheControl,
            "x-content-type-options": "nosniff",
        ]
        if file.contentType.hasPrefix("text/html") {
            headers.add(name: "content-security-policy", value: "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self' https://cdn.socket.io")
        }
        if head.headers["if-none-match"].contains(file.etag) {
            return HTTPResponse(status: .notModified, headers: headers)
        }
        return HTTPResponse(status: .ok, headers: headers, body: head.method == .HEAD ? ByteBuffer() : file.body)
    }
}
