import NIOCore
import NIOHTTP1
import NIOWebSocket

/// Upgrades a connection to WebSocket on any of its requests, not only the first.
///
/// NIO's `HTTPServerUpgradeHandler` considers only a connection's first request. Clients
/// that keep HTTP connections alive (aiohttp, under python-socketio's `AsyncClient`) send
/// the upgrade on a connection that already carried polling requests, and the reference
/// server accepts it. `HTTPServerPipelineHandler`, beneath this handler, delivers a request
/// only once the response to the previous one has ended, so every request seen here finds
/// the connection idle, as a first request does.
///
/// A request that is not an acceptable upgrade passes through untouched, to the router,
/// which answers it (a refused upgrade gets the reference's 400).
final class WebSocketUpgradeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Forwarding a request that is not an upgrade, up to its end.
        case forwarding
        /// An upgrade request the server accepts: waiting for its end.
        case awaitingEnd(HTTPRequestHead)
        /// Taking the HTTP handlers out; what arrives meanwhile is kept for the WebSocket.
        case upgrading
    }

    private let upgrader: NIOWebSocketServerUpgrader
    private let accepts: (HTTPRequestHead) -> Bool
    private let encoder: HTTPResponseEncoder
    /// The inbound HTTP handlers beneath this one, nearest first: they go before the 101
    /// is written, so nothing after the upgrade request is parsed as HTTP.
    private let httpHandlers: [any RemovableChannelHandler]
    /// The handler above this one that routes HTTP requests; it goes too.
    private let router: any RemovableChannelHandler
    private var state = State.idle
    private var buffered = CircularBuffer<NIOAny>()

    init(
        upgrader: NIOWebSocketServerUpgrader,
        accepts: @escaping (HTTPRequestHead) -> Bool,
        encoder: HTTPResponseEncoder,
        httpHandlers: [any RemovableChannelHandler],
        router: any RemovableChannelHandler
    ) {
        self.upgrader = upgrader
        self.accepts = accepts
        self.encoder = encoder
        self.httpHandlers = httpHandlers
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch state {
        case .upgrading:
            // Bytes the HTTP decoder handed back when it left, or frames sent early.
            buffered.append(data)
        case .forwarding:
            if case .end = unwrapInboundIn(data) { state = .idle }
            context.fireChannelRead(data)
        case .awaitingEnd(let head):
            // An upgrade request has no body worth keeping.
            guard case .end = unwrapInboundIn(data) else { return }
            upgrade(head, context: context)
        case .idle:
            guard case .head(let head) = unwrapInboundIn(data),
                EngineIORequest.isWebSocketUpgrade(head.headers), accepts(head)
            else {
                state = .forwarding
                if case .end = unwrapInboundIn(data) { state = .idle }
                context.fireChannelRead(data)
                return
            }
            state = .awaitingEnd(head)
        }
    }

    private func upgrade(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .upgrading
        let initialHeaders = HTTPHeaders([("connection", "upgrade"), ("upgrade", "websocket")])
        upgrader.buildUpgradeResponse(channel: context.channel, upgradeRequest: head, initialResponseHeaders: initialHeaders)
            .hop(to: context.eventLoop)
            .assumeIsolated()
            .whenComplete { result in
                switch result {
                case .success(let headers):
                    self.switchProtocols(head, headers: headers, context: context)
                case .failure:
                    // A bad key or version: the router answers the request as plain HTTP.
                    self.state = .idle
                    context.fireChannelRead(self.wrapInboundOut(.head(head)))
                    context.fireChannelRead(self.wrapInboundOut(.end(nil)))
                    self.replayBuffered(context: context)
                }
            }
    }

    private func switchProtocols(_ head: HTTPRequestHead, headers: HTTPHeaders, context: ChannelHandlerContext) {
        let pipeline = context.pipeline.syncOperations
        // The decoder may leave only once it has finished delivering this request; the 101
        // waits for it, and for the others.
        let removals = httpHandlers.map { pipeline.removeHandler($0) }
        EventLoopFuture.andAllSucceed(removals, on: context.eventLoop)
            .assumeIsolated()
            .flatMap { () -> EventLoopFuture<Void> in
                let response = HTTPResponseHead(version: .http1_1, status: .switchingProtocols, headers: headers)
                context.writeAndFlush(self.wrapOutboundOut(.head(response)), promise: nil)
                pipeline.removeHandler(self.encoder, promise: nil)
                pipeline.removeHandler(self.router, promise: nil)
                return self.upgrader.upgrade(context: context, upgradeRequest: head)
            }
            .whenComplete { result in
                switch result {
                case .success:
                    // Leaving delivers what arrived meanwhile to the WebSocket decoder.
                    pipeline.removeHandler(context: context, promise: nil)
                case .failure:
                    context.close(promise: nil)
                }
            }
    }

    func removeHandler(context: ChannelHandlerContext, removalToken: ChannelHandlerContext.RemovalToken) {
        replayBuffered(context: context)
        context.leavePipeline(removalToken: removalToken)
    }

    private func replayBuffered(context: ChannelHandlerContext) {
        guard !buffered.isEmpty else { return }
        while let data = buffered.popFirst() { context.fireChannelRead(data) }
        context.fireChannelReadComplete()
    }
}
