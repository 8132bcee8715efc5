import Atomics
import HTTPCommon
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Routes the HTTP requests of one connection: Engine.IO handshakes and polling requests
/// to their sessions, errors answered as the reference server does, anything else to the
/// fallback responder. It holds no protocol state of its own beyond the request at hand.
final class HTTPRequestHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let name = "engineio.http"
    private static let nextPollToken = ManagedAtomic<UInt64>(1)

    private enum Kind {
        case handshake
        case poll(EngineIOSession)
        case post(EngineIOSession)
        case preflight
        case fallback
        case failure(HTTPResponse)
    }

    private enum State {
        case idle
        /// Reading a request; the body is kept only for POSTs and fallback requests.
        case reading(HTTPRequestHead, Kind, ByteBuffer)
        /// A response went out before the request ended (413): drop the rest.
        case discarding
        /// A polling GET is with its session; `token` names it there.
        case polling(EngineIOSession, token: UInt64)
        /// Waiting for the fallback responder.
        case responding
    }

    private let server: EngineIOServer
    private var state: State = .idle
    private var keepAlive = true
    /// A response to HEAD carries no body (the encoder is not told the request's method).
    private var answeringHEAD = false
    private var corsHeaders = HTTPHeaders()
    private var headTimer: Scheduled<Void>?

    init(server: EngineIOServer) {
        self.server = server
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { awaitNextHead(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        awaitNextHead(context: context)
        context.fireChannelActive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        // After a WebSocket upgrade the connection is the WebSocket's to time.
        headTimer?.cancel()
        headTimer = nil
    }

    /// Gives the client `requestHeadTimeout` to send its next request head.
    private func awaitNextHead(context: ChannelHandlerContext) {
        headTimer?.cancel()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        headTimer = context.eventLoop.scheduleTask(in: server.configuration.requestHeadTimeout) {
            bound.value.close(promise: nil)
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            headTimer?.cancel()
            headTimer = nil
            // An upgrade request that reaches the router was refused. The HTTP decoder parses
            // nothing after an upgrade request, so the connection ends with the answer, as
            // the reference ends it (engine.io's abortUpgrade); the session is untouched.
            keepAlive = head.isKeepAlive && !EngineIORequest.isWebSocketUpgrade(head.headers)
            answeringHEAD = head.method == .HEAD
            let kind = classify(head, context: context)
            if case .failure(let response) = kind, response.status == .payloadTooLarge {
                // Answer before the body arrives, so it is never read, let alone buffered.
                state = .discarding
                write(response, context: context)
            } else {
                state = .reading(head, kind, ByteBuffer())
            }
        case .body(var chunk):
            guard case .reading(let head, let kind, var body) = state else { return }
            switch kind {
            case .post, .fallback:
                guard body.readableBytes + chunk.readableBytes <= server.configuration.maxHttpBufferSize else {
                    // Refused without buffering the rest; the connection cannot be reused.
                    state = .discarding
                    keepAlive = false
                    write(HTTPResponse(status: .payloadTooLarge), context: context)
                    return
                }
                state = .idle  // drop the reference to `body` so the append does not copy
                body.writeBuffer(&chunk)
                state = .reading(head, kind, body)
            default:
                break
            }
        case .end:
            guard case .reading(let head, let kind, let body) = state else {
                if case .discarding = state { state = .idle }
                return
            }
            requestEnded(head: head, kind: kind, body: body, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        headTimer?.cancel()
        headTimer = nil
        if case .polling(let session, let token) = state {
            session.eventLoop.execute { session.pollConnectionClosed(token: token) }
        }
        state = .idle
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A refused WebSocket upgrade is reported here, then the request itself follows as
        // a plain HTTP request, which gets the reference's error answer.
        if error is NIOWebSocketUpgradeError { return }
        // HTTP parse errors were already answered with a 400 by NIO's protocol error
        // handler; a connection that ends mid-request has nothing left to answer. Either
        // way this connection is done, and the error goes no further.
        context.close(promise: nil)
    }

    // MARK: Routing

    private func classify(_ head: HTTPRequestHead, context: ChannelHandlerContext) -> Kind {
        guard server.servesHost(of: head) else {
            corsHeaders = [:]
            EngineIOMetrics.refusedHost.increment()
            return .failure(Self.misdirectedResponse())
        }
        guard let request = EngineIORequest(head: head, mountPath: server.configuration.path) else {
            corsHeaders = [:]
            return .fallback
        }
        corsHeaders = Self.corsHeaders(for: request, policy: server.configuration.cors)
        if head.method == .OPTIONS { return .preflight }
        switch server.route(request) {
        case .failure(let error):
            return .failure(Self.errorResponse(error))
        case .success(.handshake) where server.isAtCapacity:
            EngineIOMetrics.refusedAtCapacity.increment()
            return .failure(Self.capacityResponse())
        case .success(.handshake(.polling)):
            return .handshake
        case .success(.handshake(.websocket)), .success(.upgrade):
            // The WebSocket upgrader declined this request (a bad Sec-WebSocket-Version, say).
            return .failure(Self.errorResponse(.badRequest))
        case .success(.poll(let sid)):
            guard let session = server.session(sid) else { return .failure(Self.errorResponse(.unknownSessionID)) }
            switch head.method {
            case .GET:
                return .poll(session)
            case .POST:
                if head.headers.first(name: "content-type") == "application/octet-stream" {
                    // Protocol 4 sends binary as base64 text; the reference ends the session.
                    session.closeNow(reason: .transportError)
                    return .failure(Self.errorResponse(.badRequest))
                }
                if let length = head.headers.first(name: "content-length").flatMap(Int.init),
                    length > server.configuration.maxHttpBufferSize
                {
                    keepAlive = false
                    return .failure(HTTPResponse(status: .payloadTooLarge))
                }
                return .post(session)
            default:
                return .failure(HTTPResponse(status: .internalServerError))
            }
        }
    }

    private func requestEnded(head: HTTPRequestHead, kind: Kind, body: ByteBuffer, context: ChannelHandlerContext) {
        switch kind {
        case .failure(let response):
            state = .idle
            write(response, context: context)
        case .preflight:
            state = .idle
            write(Self.preflightResponse(head, cors: corsHeaders), context: context)
        case .handshake:
            let handshake = EngineIOHandshake(
                uri: head.uri,
                headers: head.headers,
                remoteAddress: context.remoteAddress,
                transport: .polling
            )
            let session = server.openSession(handshake: handshake, on: context.eventLoop, webSocket: nil)
            startPoll(on: session, context: context)
        case .poll(let session):
            startPoll(on: session, context: context)
        case .post(let session):
            let packets = EngineIOPayload.decode(body)
            EngineIOMetrics.packetsIn.increment(by: Int64(packets.count))
            EngineIOMetrics.bytesIn.increment(by: Int64(body.readableBytes))
            state = .responding
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            let loop = context.eventLoop
            let respond: @Sendable () -> Void = {
                let (handler, context) = bound.value
                handler.state = .idle
                if packets.last == .invalid {
                    // The session closed with "parse error"; the POST itself is refused.
                    handler.write(Self.errorResponse(.badRequest), context: context)
                    return
                }
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/html")
                handler.write(HTTPResponse(status: .ok, headers: headers, body: ByteBuffer(string: "ok")), context: context)
            }
            // Answered once the session has handled the packets, as the reference does: what
            // they caused (echoes queued for one GET, the session's end) is settled before
            // the client, told "ok", sends its next request.
            if session.eventLoop.inEventLoop {
                session.postReceived(packets)
                respond()
            } else {
                session.eventLoop.execute {
                    session.postReceived(packets)
                    loop.execute(respond)
                }
            }
        case .fallback:
            state = .responding
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            server.fallback.respond(to: head, body: body, on: context.eventLoop).whenComplete { result in
                let (handler, context) = bound.value
                handler.state = .idle
                switch result {
                case .success(let response): handler.write(response, context: context)
                case .failure: handler.write(HTTPResponse(status: .internalServerError), context: context)
                }
            }
        }
    }

    private func startPoll(on session: EngineIOSession, context: ChannelHandlerContext) {
        let token = Self.nextPollToken.loadThenWrappingIncrement(ordering: .relaxed)
        state = .polling(session, token: token)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        // Completes once the answer is written (or there was none to write).
        let finish: @Sendable (HTTPResponse) -> EventLoopFuture<Void> = { response in
            let written = loop.makePromise(of: Void.self)
            let run: @Sendable () -> Void = {
                let (handler, context) = bound.value
                guard case .polling(_, let current) = handler.state, current == token else { return written.succeed() }
                handler.state = .idle
                handler.write(response, context: context).cascade(to: written)
            }
            if loop.inEventLoop { run() } else { loop.execute(run) }
            return written.futureResult
        }
        let responder = PollResponder(
            token: token,
            answer: { packets in
                EngineIOMetrics.packetsOut.increment(by: Int64(packets.count))
                var headers = HTTPHeaders()
                headers.add(name: "content-type", value: "text/plain; charset=UTF-8")
                return finish(HTTPResponse(status: .ok, headers: headers, body: EngineIOPayload.encode(packets)))
            },
            reject: { _ = finish(HTTPResponse(status: .badRequest)) }
        )
        if session.eventLoop.inEventLoop {
            session.pollReceived(responder)
        } else {
            session.eventLoop.execute { session.pollReceived(responder) }
        }
    }

    // MARK: Responses

    @discardableResult
    private func write(_ response: HTTPResponse, context: ChannelHandlerContext) -> EventLoopFuture<Void> {
        var headers = response.headers
        for (name, value) in corsHeaders where !headers.contains(name: name) {
            headers.add(name: name, value: value)
        }
        if !headers.contains(name: "cache-control") { headers.add(name: "cache-control", value: "no-store") }
        headers.replaceOrAdd(name: "content-length", value: String(response.body.readableBytes))
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        let head = HTTPResponseHead(version: .http1_1, status: response.status, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        if response.body.readableBytes > 0 && !answeringHEAD {
            EngineIOMetrics.bytesOut.increment(by: Int64(response.body.readableBytes))
            context.write(wrapOutboundOut(.body(.byteBuffer(response.body))), promise: nil)
        }
        let written = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if keepAlive {
            awaitNextHead(context: context)
        } else {
            written.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
        return written
    }

    static func errorResponse(_ error: EngineIORequestError) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return HTTPResponse(status: .init(statusCode: error.httpStatus), headers: headers, body: ByteBuffer(string: error.body))
    }

    static func misdirectedResponse() -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        return HTTPResponse(status: .misdirectedRequest, headers: headers, body: ByteBuffer(string: #"{"message":"Host not allowed"}"#))
    }

    static func capacityResponse() -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json")
        headers.add(name: "retry-after", value: "5")
        return HTTPResponse(status: .serviceUnavailable, headers: headers, body: ByteBuffer(string: #"{"message":"Server at capacity"}"#))
    }

    static func corsHeaders(for request: EngineIORequest, policy: CORSPolicy) -> HTTPHeaders {
        var headers = HTTPHeaders()
        guard let origin = request.origin, policy.allows(origin: origin, host: request.host) else { return headers }
        headers.add(name: "access-control-allow-origin", value: policy.allowOriginHeader(for: origin))
        if policy.allowCredentials { headers.add(name: "access-control-allow-credentials", value: "true") }
        headers.add(name: "vary", value: "Origin")
        return headers
    }

    static func preflightResponse(_ head: HTTPRequestHead, cors: HTTPHeaders) -> HTTPResponse {
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
}
