import CompressNIO
import HTTPCommon
import NIOCore
import NIOHTTP1

/// Compression of long-polling responses, as the reference's `httpCompression` option: a
/// response body of at least `threshold` bytes is sent gzip- or deflate-encoded to a client
/// whose `Accept-Encoding` takes one of them. The official JavaScript client in a browser and
/// python-socketio's clients (through `requests` and `aiohttp`) all accept both.
public struct HTTPCompression: Sendable, Hashable {
    /// The smallest body compressed, in bytes: below it a gzip header and trailer cost more
    /// than they save. The reference's default is 1,024.
    public var threshold: Int

    /// Compresses bodies of at least `threshold` bytes.
    public init(threshold: Int = 1024) {
        self.threshold = threshold
    }
}

/// A content coding of the HTTP responses the server compresses.
enum HTTPContentCoding: String, Sendable, CaseIterable {
    case gzip
    /// The zlib format (RFC 1950), which is what HTTP calls `deflate`.
    case deflate

    /// The coding an `Accept-Encoding` value prefers among gzip and deflate, as the
    /// reference's negotiation (the `accepts` package) picks it: the highest quality above
    /// zero, then the one named first, then gzip; `*` stands for either one it does not
    /// name. Nil if it takes neither (or there is no header).
    static func preferred(by acceptEncoding: String?) -> HTTPContentCoding? {
        guard let acceptEncoding else { return nil }
        // (quality, position in the header) of each coding, as named or through `*`.
        var named: [HTTPContentCoding: (quality: Double, order: Int)] = [:]
        var wildcard: (quality: Double, order: Int)?
        var order = 0
        for entry in acceptEncoding.split(separator: ",", omittingEmptySubsequences: true) {
            let parts = entry.split(separator: ";")
            guard let first = parts.first else { continue }
            let name = first.trimmingSpaces().lowercased()
            var quality = 1.0
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1).map { $0.trimmingSpaces().lowercased() }
                if pair.count == 2, pair[0] == "q" { quality = Double(pair[1]) ?? 0 }
            }
            let coding = name == "x-gzip" ? .gzip : HTTPContentCoding(rawValue: name)
            if let coding, named[coding] == nil {
                named[coding] = (quality, order)
            } else if name == "*", wildcard == nil {
                wildcard = (quality, order)
            }
            order += 1
        }
        var best: (coding: HTTPContentCoding, quality: Double, order: Int)?
        for coding in allCases {
            guard let (quality, order) = named[coding] ?? wildcard, quality > 0 else { continue }
            if let current = best, current.quality > quality || (current.quality == quality && current.order <= order) { continue }
            best = (coding, quality, order)
        }
        return best?.coding
    }

    /// `body` in this coding, at zlib's default level (the reference's).
    func encode(_ body: ByteBuffer) throws -> ByteBuffer {
        let compressor = try ZlibCompressor(algorithm: self == .gzip ? .gzip : .zlib)
        var input = body
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .finish)
        return output
    }
}

extension HTTPResponse {
    /// This response, its body compressed for a request whose `Accept-Encoding` is
    /// `acceptEncoding` if `compression` is on, the body is long enough and the client takes
    /// gzip or deflate; as it is otherwise (or if compressing would not make it shorter).
    func compressed(for acceptEncoding: String?, with compression: HTTPCompression?) -> HTTPResponse {
        guard let compression, body.readableBytes >= compression.threshold,
            !headers.contains(name: "content-encoding"),
            let coding = HTTPContentCoding.preferred(by: acceptEncoding),
            let encoded = try? coding.encode(body), encoded.readableBytes < body.readableBytes
        else { return self }
        var response = self
        response.body = encoded
        response.headers.replaceOrAdd(name: "content-encoding", value: coding.rawValue)
        response.headers.add(name: "vary", value: "Accept-Encoding")
        return response
    }
}
