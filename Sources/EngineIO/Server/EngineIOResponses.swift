import HTTPCommon
import NIOCore
import NIOHTTP1

/// The answers Engine.IO gives over HTTP, as the reference server words them; every host
/// sends the same ones.
enum EngineIOResponses {
    static func payload(_ packets: [EngineIOOutboundPacket]) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/plain; charset=UTF-8")
        return HTTPResponse(status: .ok, headers: headers, body: EngineIOPayload.encode(packets))
    }

    static func error(_ error: EngineIORequestError) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return HTTPResponse(status: .init(statusCode: error.httpStatus), headers: headers, body: ByteBuffer(string: error.body))
    }

    static func misdirected() -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return HTTPResponse(status: .misdirectedRequest, headers: headers, body: ByteBuffer(string: #"{"message":"Host not allowed"}"#))
    }

    static func atCapacity() -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "retry-after", value: "5")
        return HTTPResponse(status: .serviceUnavailable, headers: headers, body: ByteBuffer(string: #"{"message":"Server at capacity"}"#))
    }

    static func cors(for request: EngineIORequest, policy: CORSPolicy) -> HTTPHeaders {
        var headers = HTTPHeaders()
        guard let origin = request.origin, policy.allows(origin: origin, host: request.host) else { return headers }
        headers.add(name: "access-control-allow-origin", value: policy.allowOriginHeader(for: origin))
        if policy.allowsCredentials(from: origin) { headers.add(name: "access-control-allow-credentials", value: "true") }
        headers.add(name: "vary", value: "Origin")
        return headers
    }

    static func preflight(_ head: HTTPRequestHead, cors: HTTPHeaders) -> HTTPResponse {
        var headers = HTTPHeaders()
        if !cors.isEmpty {
            headers.add(name: "access-control-allow-methods", value: "GET,POST,OPTIONS")
            if let requested = head.headers.first(name: "access-control-request-headers") {
                headers.add(name: "access-control-allow-headers", value: requested)
            }
            headers.add(name: "access-control-max-age", value: "86400")
        }
        return HTTPResponse(status: .noContent, headers: headers)
    }

    /// The headers every Engine.IO answer carries, whichever host writes it: the request's
    /// CORS headers and `Cache-Control: no-store` (a poll must never be answered from a cache).
    static func withCommonHeaders(_ response: HTTPResponse, cors: HTTPHeaders) -> HTTPResponse {
        var response = response
        for (name, value) in cors where !response.headers.contains(name: name) {
            response.headers.add(name: name, value: value)
        }
        if !response.headers.contains(name: "cache-control") { response.headers.add(name: "cache-control", value: "no-store") }
        return response
    }
}
