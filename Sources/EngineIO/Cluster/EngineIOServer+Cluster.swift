import HTTPCommon
import NIOCore
import NIOHTTP1
import NIOWebSocket

extension EngineIOServer {
    /// A message from another node of the cluster.
    func clusterReceived(_ message: ByteBuffer) {
        guard let forwarder else { return }
        guard let envelope = ClusterEnvelope(decoding: message) else {
            logger.warning("malformed cluster message dropped", metadata: ["bytes": "\(message.readableBytes)"])
            return
        }
        received(envelope, forwarder: forwarder)
    }

    private func received(_ envelope: ClusterEnvelope, forwarder: SessionForwarder) {
        switch envelope {
        case .request(let node, let id, let head, let body):
            serveForwardedRequest(head, body: body, key: .init(node: node, id: id), forwarder: forwarder)
        case .requestGone(let node, let id):
            forwarder.remoteRequestGone(.init(node: node, id: id))
        case .response(let id, let status, let headers, let body):
            forwarder.received(response: id, status: status, headers: headers, body: body)
        case .webSocketOpened(let node, let id, let head):
            adoptRemoteWebSocket(head, key: .init(node: node, id: id), forwarder: forwarder)
        case .webSocketReceived(let node, let id, let sequence, let binary, let data):
            guard let (socket, session) = forwarder.remoteWebSocket(.init(node: node, id: id)) else { return }
            // A gap: the bus lost one of the client's messages, and the session cannot go on
            // as if it had it (an event, an ack). Ended, the client reconnects and recovers.
            // Text that is not UTF-8 ends it as on this node's own socket.
            let inOrder = socket.accepts(sequence)
            guard inOrder, let packet = EngineIOInboundPacket(webSocketMessage: data, binary: binary) else {
                socket.close(code: inOrder ? .dataInconsistentWithMessage : .unexpectedServerError)
                session.eventLoop.execute { session.webSocketClosed(socket, error: true) }
                return
            }
            EngineIOMetrics.packetsIn.increment()
            session.eventLoop.execute { session.webSocketReceived(packet, on: socket) }
        case .webSocketWritability(let node, let id, let writable):
            guard let (socket, session) = forwarder.remoteWebSocket(.init(node: node, id: id)) else { return }
            socket.writabilityChanged(writable)
            session.eventLoop.execute { session.webSocketWritabilityChanged() }
        case .webSocketClosed(let node, let id, let error):
            guard let (socket, session) = forwarder.forgetRemoteWebSocket(.init(node: node, id: id)) else { return }
            session.eventLoop.execute { session.webSocketClosed(socket, error: error) }
        case .webSocketWrite(let id, let sequence, let packets):
            forwarder.received(write: packets, to: [.init(id: id, sequence: sequence)])
        case .webSocketBroadcast(let targets, let packets):
            forwarder.received(write: packets, to: targets)
        case .webSocketClose(let id, let code):
            forwarder.received(close: code, relay: id)
        case .probe(let node, let relays):
            forwarder.closeUnknownRelays(relays.filter { forwarder.remoteWebSocket(.init(node: node, id: $0)) == nil }, of: node)
        case .batch(let envelopes):
            for envelope in envelopes { received(envelope, forwarder: forwarder) }
        }
    }

    /// Answers a request that another node received for one of this node's sessions, as if
    /// it had come here, and sends the answer back.
    private func serveForwardedRequest(_ head: HTTPRequestHead, body: ByteBuffer, key: SessionForwarder.RemoteKey, forwarder: SessionForwarder) {
        let connection = EngineIOHostConnection(eventLoop: forwarder.eventLoop)
        forwarder.addRemoteRequest(key, connection: connection)
        Task {
            let response = await self.respond(
                to: EngineIOHostRequest(head: head, remoteAddress: nil), on: connection,
                body: { limit in body.readableBytes <= limit ? body : nil }, forwarding: false
            )
            forwarder.removeRemoteRequest(key)
            forwarder.send(
                .response(id: key.id, status: UInt16(response.status.code), headers: response.headers, body: response.body), to: key.node
            )
        }
    }

    /// Takes a WebSocket that another node accepted for one of this node's sessions as the
    /// session's upgrade candidate, as `configureWebSocket` takes one of this node's.
    private func adoptRemoteWebSocket(_ head: HTTPRequestHead, key: SessionForwarder.RemoteKey, forwarder: SessionForwarder) {
        guard let request = EngineIORequest(head: head, mountPath: configuration.path),
            case .success(.upgrade(let sid)) = route(request, forwarding: false), let session = session(sid)
        else {
            forwarder.send(.webSocketClose(id: key.id, code: 1008), to: key.node)  // policy violation, as here
            return
        }
        let socket = RemoteWebSocket(key: key, forwarder: forwarder, eventLoop: session.eventLoop)
        forwarder.addRemoteWebSocket(socket, session: session)
        session.eventLoop.execute { session.upgradeCandidateConnected(socket) }
    }
}
