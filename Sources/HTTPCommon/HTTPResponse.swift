import NIOCore
import NIOHTTP1

/// A plain HTTP response.
public struct HTTPResponse: Sendable {
    public var status: HTTPResponseStatus
    public var headers: HTTPHeaders
    public var body: ByteBuffer

    public init(status: HTTPResponseStatus, headers: HTTPHeaders = [:], body: ByteBuffer = ByteBuffer()) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}

/// Answers the HTTP requests that are not for Engine.IO (a page, an API).
public protocol HTTPFallbackResponder: Sendable {
    /// Called on the connection's event loop, with the whole request body.
    func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse>
}

/// Answers everything with 404.
public struct NotFoundResponder: HTTPFallbackResponder {
    public init() {}

    public func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=utf-8")
        return eventLoop.makeSucceededFuture(HTTPResponse(status: .notFound, headers: headers, body: ByteBuffer(string: "Not Found")))
    }
}
