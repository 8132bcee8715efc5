import NIOCore
import NIOHTTP1
import NIOWebSocket

/// The WebSocket transport of one connection, after the HTTP upgrade: it turns frames into
/// Engine.IO packets for its session and answers WebSocket control frames.
final class WebSocketTransportHandler: ChannelInboundHandler {
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    enum Target {
        /// A new session over WebSocket (`transport=websocket`, no sid).
        case handshake(EngineIOHandshake)
        /// An existing polling session to upgrade.
        case upgrade(EngineIOSession)
        /// A session that the cluster's node `node` holds: the WebSocket is relayed there.
        case relay(node: String, head: HTTPRequestHead)
    }

    private let server: EngineIOServer
    private let connection: WebSocketConnection
    private var target: Target?
    private var session: EngineIOSession?
    /// The owner node and this WebSocket's id there, for a relayed one.
    private var relay: (node: String, id: UInt64)?
    private var sawError = false
    private var slowConsumerTimer: Scheduled<Void>?
    private var assembler: WebSocketMessageAssembler

    init(server: EngineIOServer, connection: WebSocketConnection, target: Target) {
        self.server = server
        self.connection = connection
        self.target = target
        self.assembler = WebSocketMessageAssembler(maxMessageSize: server.configuration.maxHttpBufferSize, maxFragments: 1024)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        server.openWebSockets.opened()
        guard let target else { return }
        self.target = nil
        switch target {
        case .handshake(let handshake):
            session = server.openSession(handshake: handshake, on: context.eventLoop, webSocket: connection)
        case .upgrade(let session):
            self.session = session
            let connection = self.connection
            onSessionLoop(session) { $0.upgradeCandidateConnected(connection) }
        case .relay(let node, let head):
            guard let forwarder = server.forwarder else { return }
            relay = (node, forwarder.openRelay(connection, head: head, to: node))
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        server.openWebSockets.closed()  // the channel closed: its pipeline was torn down
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard !connection.isClosing else { return }
        // Reserved bits are a protocol error (RFC 6455 §5.2), but for RSV1 on the first frame
        // of a data message where permessage-deflate was agreed (RFC 7692 §6).
        guard !frame.rsv2, !frame.rsv3, !frame.rsv1 || (connection.deflate != nil && (frame.opcode == .text || frame.opcode == .binary)) else {
            closeWithError(.protocolError, context: context)
            return
        }
        switch frame.opcode {
        case .text, .binary, .continuation:
            do {
                guard var message = try assembler.receive(frame) else { return }
                if message.compressed, let deflate = connection.deflate {
                    switch Result(catching: { () throws(WebSocketDeflater.InflateFailure) in
                        try deflate.deflater.inflate(message.data, limit: server.configuration.maxHttpBufferSize)
                    }) {
                    case .success(let data):
                        message.data = data
                        message.compressed = false
                    case .failure(.tooLarge):
                        return closeWithError(.messageTooLarge, context: context)
                    case .failure(.corrupt):
                        return closeWithError(.dataInconsistentWithMessage, context: context)
                    }
                }
                received(message, context: context)
            } catch .unexpectedFrame {
                closeWithError(.protocolError, context: context)
            } catch {
                closeWithError(.messageTooLarge, context: context)
            }
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
        case .connectionClose:
            // Echo the client's close code, then close, as RFC 6455 asks.
            var data = frame.unmaskedData
            connection.close(code: data.readWebSocketErrorCode() ?? .normalClosure)
        case .pong:
            break
        default:
            closeWithError(.protocolError, context: context)
        }
    }

    private func received(_ message: WebSocketMessageAssembler.Message, context: ChannelHandlerContext) {
        EngineIOMetrics.bytesIn.increment(by: Int64(message.data.readableBytes))
        if let relay {
            // The owner checks and decodes it, as it would have on its own socket.
            server.forwarder?.relayReceived(relay.id, node: relay.node, binary: message.opcode == .binary, data: message.data)
            return
        }
        guard let packet = EngineIOInboundPacket(webSocketMessage: message.data, binary: message.opcode == .binary) else {
            closeWithError(.dataInconsistentWithMessage, context: context)
            return
        }
        deliver(packet)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let code: WebSocketErrorCode
        switch error {
        case NIOWebSocketError.invalidFrameLength:
            code = .messageTooLarge
        default:
            code = .protocolError
        }
        closeWithError(code, context: context)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if let session { onSessionLoop(session) { $0.webSocketWritabilityChanged() } }
        if let relay { server.forwarder?.relayWritabilityChanged(relay.id, node: relay.node, writable: context.channel.isWritable) }
        if context.channel.isWritable {
            slowConsumerTimer?.cancel()
            slowConsumerTimer = nil
        } else if slowConsumerTimer == nil {
            // The client reads slower than the server writes: give it `slowConsumerTimeout`
            // to catch up, then drop it instead of letting its backlog grow.
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            slowConsumerTimer = context.eventLoop.scheduleTask(in: server.configuration.slowConsumerTimeout) {
                let (handler, context) = bound.value
                guard !context.channel.isWritable else { return }
                EngineIOMetrics.slowConsumersDropped.increment()
                handler.server.logger.info(
                    "slow consumer dropped",
                    metadata: ["session": "\(handler.session.map { EngineIOSession.logLabel($0.id) } ?? "-")", "remote": "\(context.channel.remoteAddress.map { "\($0)" } ?? "?")"]
                )
                handler.sawError = true
                handler.notifySessionClosed()
                context.close(promise: nil)
            }
        }
        context.fireChannelWritabilityChanged()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // A host that allows half-closure (Hummingbird does) reports the client's FIN as an
        // event, not as the channel's end: without a close frame first, the link is lost.
        if case ChannelEvent.inputClosed = event {
            sawError = true
            notifySessionClosed()
            context.close(promise: nil)
        }
        // A host shutting down gracefully (Vapor's server, Hummingbird's) asks its connections
        // to finish: the session ends as the engine's own shutdown ends it, with "server
        // shutting down" (a reason the clients reconnect after), not cut when the host's
        // wait runs out.
        if event is ChannelShouldQuiesceEvent, let session {
            _ = session.closeNow(reason: .serverShuttingDown)
        }
        // A WebSocket relayed for another node's session goes too (1001: the client comes
        // back through the balancer, to a node that stays, and is recovered there).
        if event is ChannelShouldQuiesceEvent, relay != nil {
            connection.close(code: .goingAway)
            notifySessionClosed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        slowConsumerTimer?.cancel()
        slowConsumerTimer = nil
        notifySessionClosed()
        context.fireChannelInactive()
    }

    private func deliver(_ packet: EngineIOInboundPacket) {
        EngineIOMetrics.packetsIn.increment()
        guard let session else { return }
        let connection = self.connection
        onSessionLoop(session) { $0.webSocketReceived(packet, on: connection) }
    }

    private func onSessionLoop(_ session: EngineIOSession, _ body: @escaping @Sendable (EngineIOSession) -> Void) {
        // A WebSocket handshake session lives on this channel's loop; only upgrades from a
        // polling session opened elsewhere pay for the hop.
        if session.eventLoop.inEventLoop {
            body(session)
        } else {
            session.eventLoop.execute { body(session) }
        }
    }

    private func closeWithError(_ code: WebSocketErrorCode, context: ChannelHandlerContext) {
        sawError = true
        connection.close(code: code)
        // The session hears of it now rather than after the client's close.
        notifySessionClosed()
    }

    private func notifySessionClosed() {
        if let relay {
            self.relay = nil
            server.forwarder?.relayClosed(relay.id, node: relay.node, error: sawError)
        }
        guard let session else { return }
        self.session = nil
        let connection = self.connection
        let error = sawError
        onSessionLoop(session) { $0.webSocketClosed(connection, error: error) }
    }
}
