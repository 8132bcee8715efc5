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

    private enum State {
        case idle
        /// Reading a request; the body is kept only for POSTs and fallback requests.
        case reading(HTTPRequestHead, RequestDisposition, ByteBuffer)
        /// A response went out before the request ended (413): drop the rest.
        case discarding
        /// A polling GET is with its session; `token` names it there.
        case polling(EngineIOSession, token: UInt64)
        /// A request forwarded to the cluster's node `node`, which holds its session.
        case forwarding(id: UInt64, node: String)
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
            let kind = classify(head)
            if case .answer(let response) = kind, response.status == .payloadTooLarge {
                // Answer before the body arrives, so it is never read, let alone buffered.
                state = .discarding
                write(response, context: context)
            } else {
                state = .reading(head, kind, ByteBuffer())
            }
        case .body(var chunk):
            guard case .reading(let head, let kind, var body) = state else { return }
            switch kind {
            case .post, .fallback, .forward:
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
        if case .forwarding(let id, let node) = state {
            server.forwarder?.requestGone(id, node: node)
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

    private func classify(_ head: HTTPRequestHead) -> RequestDisposition {
        let (disposition, cors) = server.disposition(of: head)
        corsHeaders = cors
        if case .answer(let response) = disposition, response.status == .payloadTooLarge {
            keepAlive = false  // the body is not read: the connection cannot be reused
        }
        return disposition
    }

    private func requestEnded(head: HTTPRequestHead, kind: RequestDisposition, body: ByteBuffer, context: ChannelHandlerContext) {
        switch kind {
        case .answer(let response):
            state = .idle
            write(response, context: context)
        case .closeThenAnswer(let session, let response):
            state = .responding
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            session.closeNow(reason: .transportError).hop(to: context.eventLoop).whenComplete { _ in
                let (handler, context) = bound.value
                handler.state = .idle
                handler.write(response, context: context)
            }
        case .preflight:
            state = .idle
            write(EngineIOResponses.preflight(head, cors: corsHeaders), context: context)
        case .handshake:
            let handshake = EngineIOHandshake(
                uri: head.uri,
                headers: head.headers,
                remoteAddress: context.remoteAddress,
                transport: .polling
            )
            let session = server.openSession(handshake: handshake, on: context.eventLoop, webSocket: nil)
            startPoll(on: session, acceptEncoding: head.headers.first(name: "accept-encoding"), context: context)
        case .poll(let session):
            startPoll(on: session, acceptEncoding: head.headers.first(name: "accept-encoding"), context: context)
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
                    handler.write(EngineIOResponses.error(.badRequest), context: context)
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
        case .forward(let node):
            guard let forwarder = server.forwarder else {
                state = .idle
                write(EngineIOResponses.error(.unknownSessionID), context: context)
                return
            }
            let (id, response) = forwarder.forward(
                head, body: body, to: node, on: context.eventLoop, timeout: server.forwardTimeout(for: head)
            )
            state = .forwarding(id: id, node: node)
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            response.whenSuccess { response in
                let (handler, context) = bound.value
                guard case .forwarding(let current, _) = handler.state, current == id else { return }
                handler.state = .idle
                handler.write(response, context: context)
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

    private func startPoll(on session: EngineIOSession, acceptEncoding: String?, context: ChannelHandlerContext) {
        let token = PollResponder.nextToken()
        state = .polling(session, token: token)
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        let loop = context.eventLoop
        // Completes once the answer is written (or there was none to write).
        let compression = server.configuration.httpCompression
        let finish: @Sendable (HTTPResponse) -> EventLoopFuture<Void> = { response in
            let written = loop.makePromise(of: Void.self)
            let run: @Sendable () -> Void = {
                let (handler, context) = bound.value
                guard case .polling(_, let current) = handler.state, current == token else { return written.succeed() }
                handler.state = .idle
                // Compressed on the connection's loop, not the session's.
                let response = response.compressed(for: acceptEncoding, with: compression)
                handler.write(response, context: context).cascade(to: written)
            }
            if loop.inEventLoop { run() } else { loop.execute(run) }
            return written.futureResult
        }
        let responder = PollResponder(
            token: token,
            answer: { packets in
                EngineIOMetrics.packetsOut.increment(by: Int64(packets.count))
                return finish(EngineIOResponses.payload(packets))
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
        var headers = EngineIOResponses.withCommonHeaders(response, cors: corsHeaders).headers
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
}
