import HTTPCommon
import NIOHTTP1

/// What the server does with an HTTP request, decided from its head alone. Every host (the
/// server's own NIO pipeline, a web framework's route) acts on the same decision, so they
/// answer alike.
enum RequestDisposition {
    /// A new polling session: answered with the open packet.
    case handshake
    /// A GET on a polling session: answered when there is something to send.
    case poll(EngineIOSession)
    /// A POST on a polling session: its body is the payload.
    case post(EngineIOSession)
    /// A polling request for a session another node holds: sent there, with its body.
    case forward(node: String)
    /// A CORS preflight.
    case preflight
    /// Not under the Engine.IO path: the host's to answer.
    case fallback
    /// A response that needs nothing from a session: an error, or a closed session's owed
    /// `6` (`EngineIOServer.sessionClosed`). Its body is never read (413 included).
    case answer(HTTPResponse)
    /// A request that ends its session: answered once the session is closed, so that the
    /// client's next request cannot find it still open.
    case closeThenAnswer(EngineIOSession, HTTPResponse)
}

extension EngineIOServer {
    /// Decides what to do with the request `head`, and the CORS headers its answer carries.
    ///
    /// With `forwarding` false (a request another node forwarded), a session this node does
    /// not hold is unknown, whichever node's id it carries.
    func disposition(of head: HTTPRequestHead, forwarding: Bool = true) -> (RequestDisposition, cors: HTTPHeaders) {
        guard servesHost(of: head) else {
            EngineIOMetrics.refusedHost.increment()
            return (.answer(EngineIOResponses.misdirected()), [:])
        }
        guard let request = EngineIORequest(head: head, mountPath: configuration.path) else {
            return (.fallback, [:])
        }
        let cors = EngineIOResponses.cors(for: request, policy: configuration.cors)
        if head.method == .OPTIONS { return (.preflight, cors) }
        switch route(request, forwarding: forwarding) {
        case .failure(let error):
            return (.answer(EngineIOResponses.error(error)), cors)
        case .success(.handshake) where isAtCapacity:
            EngineIOMetrics.refusedAtCapacity.increment()
            return (.answer(EngineIOResponses.atCapacity()), cors)
        case .success(.handshake(.polling)):
            return (.handshake, cors)
        case .success(.handshake(.websocket)), .success(.upgrade):
            // The WebSocket upgrader declined this request (a bad Sec-WebSocket-Version, say).
            return (.answer(EngineIOResponses.error(.badRequest)), cors)
        case .success(.remote(let node)):
            if request.isWebSocketUpgrade && request.transportName == "websocket" {
                // The WebSocket upgrader declined this request.
                return (.answer(EngineIOResponses.error(.badRequest)), cors)
            }
            if head.method == .POST, let length = head.headers.first(name: "content-length").flatMap(Int.init),
                length > configuration.maxHttpBufferSize
            {
                return (.answer(HTTPResponse(status: .payloadTooLarge)), cors)
            }
            return (.forward(node: node), cors)
        case .success(.poll(let sid)):
            guard let session = session(sid) else {
                if head.method == .GET, takeOwedNoop(sid) {
                    return (.answer(EngineIOResponses.payload([.noop])), cors)
                }
                return (.answer(EngineIOResponses.error(.unknownSessionID)), cors)
            }
            switch head.method {
            case .GET:
                return (.poll(session), cors)
            case .POST:
                if head.headers.first(name: "content-type") == "application/octet-stream" {
                    // Protocol 4 sends binary as base64 text; the reference ends the session.
                    return (.closeThenAnswer(session, EngineIOResponses.error(.badRequest)), cors)
                }
                if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                    length > configuration.maxHttpBufferSize
                {
                    return (.answer(HTTPResponse(status: .payloadTooLarge)), cors)
                }
                return (.post(session), cors)
            default:
                return (.answer(HTTPResponse(status: .internalServerError)), cors)
            }
        }
    }
}
