import Atomics
import HTTPCommon
import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Engine.IO inside a host that owns the listener: a web framework hands over the requests
/// to the Engine.IO path, and the WebSockets it upgraded. The server's own `bind` stays the
/// leanest host; these answer exactly as it does (the same `RequestDisposition`).
extension EngineIOServer {
    /// Answers a request to the Engine.IO path.
    ///
    /// A polling GET suspends until its session has something to send (or ends); a POST's
    /// body is read with `body`, which the host gives at most the number of bytes it is
    /// passed and returns nil past it (the answer is then 413, as the reference's). The
    /// answer carries its CORS headers; the host adds the framing (`Content-Length`).
    ///
    /// - Parameters:
    ///   - request: the request, with what the host's middleware established for it.
    ///   - connection: the connection it came on (see `EngineIOHostConnection`).
    ///   - body: reads the request body up to a limit.
    public func respond(
        to request: EngineIOHostRequest,
        on connection: EngineIOHostConnection,
        body: (_ limit: Int) async throws -> ByteBuffer?
    ) async -> HTTPResponse {
        await respond(to: request, on: connection, body: body, forwarding: true)
    }

    /// `forwarding` false: the request came from another node of the cluster, which this one
    /// answers for its own sessions only.
    func respond(
        to request: EngineIOHostRequest,
        on connection: EngineIOHostConnection,
        body: (_ limit: Int) async throws -> ByteBuffer?,
        forwarding: Bool
    ) async -> HTTPResponse {
        let (disposition, cors) = disposition(of: request.head, forwarding: forwarding)
        let response: HTTPResponse
        switch disposition {
        case .answer(let answer):
            response = answer
        case .closeThenAnswer(let session, let answer):
            try? await session.closeNow(reason: .transportError).get()
            response = answer
        case .preflight:
            response = EngineIOResponses.preflight(request.head, cors: cors)
        case .fallback:
            response = HTTPResponse(status: .notFound)
        case .handshake:
            let eventLoop = connection.eventLoop
            let handshake = EngineIOHandshake(
                uri: request.head.uri, headers: request.head.headers, remoteAddress: request.remoteAddress,
                transport: .polling, hostContext: request.hostContext
            )
            let session = await eventLoop.submit {
                self.openSession(handshake: handshake, on: eventLoop, webSocket: nil)
            }.get(or: nil)
            guard let session else { return HTTPResponse(status: .serviceUnavailable) }
            response = await poll(session, on: connection)
                .compressed(for: request.head.headers.first(name: "accept-encoding"), with: configuration.httpCompression)
        case .poll(let session):
            response = await poll(session, on: connection)
                .compressed(for: request.head.headers.first(name: "accept-encoding"), with: configuration.httpCompression)
        case .post(let session):
            response = await post(to: session, body: body)
        case .forward(let node):
            response = await forward(request.head, to: node, on: connection, body: body)
        }
        return EngineIOResponses.withCommonHeaders(response, cors: cors)
    }

    /// Whether the WebSocket request `request` is one this server takes: a new session over
    /// WebSocket, or the upgrade of a polling session. A host asks before it answers 101.
    public func acceptsWebSocket(_ request: EngineIOHostRequest) -> Bool {
        request.isWebSocketUpgrade && acceptsWebSocket(request.head)
    }

    /// Takes over a connection the host has upgraded to WebSocket for `request`: NIO's
    /// `WebSocketFrameDecoder` and `WebSocketFrameEncoder` are in its pipeline (as
    /// `NIOWebSocketServerUpgrader` leaves them, built with `webSocketMaxFrameSize` and
    /// without automatic error handling), the HTTP handlers are gone, and nothing reads the
    /// frames yet. From here the frames run on this server's handlers. Call it on the
    /// channel's event loop.
    public func adoptWebSocket(_ channel: any Channel, for request: EngineIOHostRequest) throws {
        if configuration.maxOutboundBytes > 0 {
            let high = configuration.maxOutboundBytes
            _ = channel.setOption(.writeBufferWaterMark, value: .init(low: high / 2, high: high))
        }
        try configureWebSocket(channel, head: request.head, hostContext: request.hostContext)
    }

    /// For a host whose graceful stop ends when the tasks of the connections it accepted
    /// have returned (Hummingbird's): call it from each WebSocket's task once the connection
    /// is adopted. One such task is held until no WebSocket is open, and the others return
    /// at once, so the stop waits for the engine's close frames (sent on the host's quiesce
    /// event) without a task per idle connection.
    public func holdWhileWebSocketsAreOpen() async {
        await openWebSockets.hold()
    }

    /// The headers a host's 101 must carry for `request` besides the WebSocket handshake's
    /// own (`Sec-WebSocket-Extensions` when permessage-deflate is on and the client offered
    /// it): return them from the upgrader's `shouldUpgrade`. `adoptWebSocket` takes the
    /// connection as having sent them.
    public func webSocketResponseHeaders(for request: EngineIOHostRequest) -> HTTPHeaders {
        webSocketResponseHeaders(for: request.head)
    }

    /// The largest WebSocket frame the server reads: what a host's upgrader is built with.
    public var webSocketMaxFrameSize: Int { max(configuration.maxHttpBufferSize, 1 << 14) }

    // MARK: Polling for a host

    private func poll(_ session: EngineIOSession, on connection: EngineIOHostConnection) async -> HTTPResponse {
        let token = PollResponder.nextToken()
        let answered = ManagedAtomic(false)
        let response = await withCheckedContinuation { (continuation: CheckedContinuation<HTTPResponse, Never>) in
            // Whichever comes first answers: the session, or the connection's end (then the
            // answer goes nowhere, but the request's task must not wait forever).
            let answer: @Sendable (HTTPResponse) -> Void = { response in
                guard answered.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
                continuation.resume(returning: response)
            }
            let responder = PollResponder(
                token: token,
                answer: { packets in
                    EngineIOMetrics.packetsOut.increment(by: Int64(packets.count))
                    let response = EngineIOResponses.payload(packets)
                    EngineIOMetrics.bytesOut.increment(by: Int64(response.body.readableBytes))
                    answer(response)
                    // Written by the host once this request's task goes on.
                    return session.eventLoop.makeSucceededVoidFuture()
                },
                reject: { answer(HTTPResponse(status: .badRequest)) }
            )
            session.eventLoop.execute { session.pollReceived(responder) }
            // Watched only once the GET is on its way to the session: a connection that has
            // closed already (the host may have seen its client leave before this task ran)
            // calls back at once, and its close must reach the session after the GET, or
            // the session would hold a GET nobody waits for until its heartbeat lapses.
            connection.watch(token: token) {
                session.eventLoop.execute { session.pollConnectionClosed(token: token) }
                answer(HTTPResponse(status: .badRequest))
            }
        }
        connection.unwatch(token: token)
        return response
    }

    private func forward(
        _ head: HTTPRequestHead, to node: String, on connection: EngineIOHostConnection, body: (_ limit: Int) async throws -> ByteBuffer?
    ) async -> HTTPResponse {
        guard let forwarder else { return EngineIOResponses.error(.unknownSessionID) }
        var payload = ByteBuffer()
        if head.method == .POST {
            guard let read = try? await body(configuration.maxHttpBufferSize) else { return HTTPResponse(status: .payloadTooLarge) }
            payload = read
        }
        let token = PollResponder.nextToken()
        let (id, response) = forwarder.forward(
            head, body: payload, to: node, on: connection.eventLoop, timeout: forwardTimeout(for: head)
        )
        // A client that gives up on a held GET: its session, on the owner, hears of it.
        connection.watch(token: token) { forwarder.requestGone(id, node: node) }
        let answer = await response.get(or: HTTPResponse(status: .badGateway))
        connection.unwatch(token: token)
        return answer
    }

    /// How long a forwarded request waits for its owner: a GET may be held for a ping interval.
    func forwardTimeout(for head: HTTPRequestHead) -> TimeAmount {
        configuration.clusterRequestTimeout + (head.method == .GET ? configuration.pingInterval : .zero)
    }

    private func post(to session: EngineIOSession, body: (_ limit: Int) async throws -> ByteBuffer?) async -> HTTPResponse {
        guard let payload = try? await body(configuration.maxHttpBufferSize) else {
            return HTTPResponse(status: .payloadTooLarge)
        }
        let packets = EngineIOPayload.decode(payload)
        EngineIOMetrics.packetsIn.increment(by: Int64(packets.count))
        EngineIOMetrics.bytesIn.increment(by: Int64(payload.readableBytes))
        // Answered once the session has handled the packets, as the server's own host does.
        await session.eventLoop.submit { session.postReceived(packets) }.get(or: ())
        if packets.last == .invalid {
            return EngineIOResponses.error(.badRequest)
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "text/html")
        return HTTPResponse(status: .ok, headers: headers, body: ByteBuffer(string: "ok"))
    }
}

extension EventLoopFuture where Value: Sendable {
    /// The value, or `fallback` if the future failed (its event loop shut down).
    fileprivate func get(or fallback: Value) async -> Value {
        (try? await get()) ?? fallback
    }
}
