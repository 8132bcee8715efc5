import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// gzip for the chat's own answers (the page, its modules and styles, the client bundle, the
/// history, the metrics) when the client accepts it, as Express's `compression()` gives the
/// Node chat. Engine.IO's polling answers are left as they are (the engine's own business).
///
/// Only a complete body of known length is compressed (every answer here has one: files and
/// JSON of bounded size), from the reference's threshold of 1 KiB up to `maximumLength`.
struct CompressionMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The Engine.IO path, whose answers pass untouched.
    let enginePath: String
    /// Below this a gzip header and trailer cost more than they save (the reference's).
    static var threshold: Int { 1024 }
    /// Above this the body is streamed as it is rather than held to be compressed.
    static var maximumLength: Int { 4 << 20 }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        guard request.uri.path != enginePath,
            let type = response.headers[.contentType], Self.isCompressible(type)
        else { return response }
        // Caches must keep the two forms apart, whichever this client gets.
        response.headers[.vary] = "Accept-Encoding"
        guard request.method != .head, response.status == .ok, response.headers[.contentEncoding] == nil,
            Self.acceptsGzip(request.headers[.acceptEncoding]),
            let length = response.body.contentLength, length >= Self.threshold, length <= Self.maximumLength
        else { return response }
        var body = try await Self.collect(response.body, length: length)
        let original = body
        let compressed = try body.compress(with: .gzip())
        guard compressed.readableBytes < length else {
            response.body = .init(byteBuffer: original)
            return response
        }
        response.headers[.contentEncoding] = "gzip"
        response.headers[.contentLength] = String(compressed.readableBytes)
        // Another representation, so no longer byte-for-byte a strong ETag's. (The file
        // middleware's are weak already, so a cache's If-None-Match matches either form.)
        if let etag = response.headers[.eTag], !etag.hasPrefix("W/") { response.headers[.eTag] = "W/" + etag }
        response.body = .init(byteBuffer: compressed)
        return response
    }

    /// Whether an `Accept-Encoding` value takes gzip (`gzip` or `*`, without `q=0`).
    static func acceptsGzip(_ value: String?) -> Bool {
        guard let value else { return false }
        for coding in value.split(separator: ",") {
            let parts = coding.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            guard let name = parts.first, name == "gzip" || name == "x-gzip" || name == "*" else { continue }
            let quality = parts.dropFirst().first { $0.hasPrefix("q=") }.flatMap { Double($0.dropFirst(2)) } ?? 1
            if quality > 0 { return true }
        }
        return false
    }

    /// Text, JavaScript, JSON, SVG: what gains from compression (images and fonts do not).
    static func isCompressible(_ contentType: String) -> Bool {
        let type = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        return type.hasPrefix("text/") || type == "application/javascript" || type == "application/json"
            || type == "image/svg+xml" || type == "application/manifest+json"
    }

    private static func collect(_ body: ResponseBody, length: Int) async throws -> ByteBuffer {
        let collector = Collector(capacity: length)
        try await body.write(CollectingWriter(collector: collector))
        return collector.buffer
    }
}

/// Where a `CollectingWriter` puts what it is given: the writer is consumed by the body.
private final class Collector: @unchecked Sendable {
    // Unchecked: written by one body's writes, which run one after the other in the
    // middleware's task, and read by that task after `write` returns.
    var buffer: ByteBuffer

    init(capacity: Int) {
        buffer = ByteBufferAllocator().buffer(capacity: capacity)
    }
}

private struct CollectingWriter: ResponseBodyWriter {
    let collector: Collector

    mutating func write(_ buffer: ByteBuffer) async throws {
        var buffer = buffer
        collector.buffer.writeBuffer(&buffer)
    }

    consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
}
