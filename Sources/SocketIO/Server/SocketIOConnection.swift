import EngineIO
import NIOCore

/// One Engine.IO session seen from Socket.IO (the reference's `Client`): it decodes
/// packets, routes them to the socket of their namespace, and closes the session on a
/// packet that does not parse.
final class SocketIOConnection: EngineIOSessionHandler, @unchecked Sendable {
    // @unchecked Sendable: `session`, `router` and `eventLoop` are immutable; everything
    // else is read and written only on `eventLoop`, where the session calls its handler
    // and where the namespace's middleware task hops back to.

    let session: EngineIOSession
    let eventLoop: any EventLoop
    var maxEventsPerSecond: Int { router.configuration.maxEventsPerSecond }
    let router: SocketIORouter
    private var decoder: SocketIOPacketDecoder
    /// The parser the client speaks, told by its first packet: a text one is the default
    /// parser's (JSON), a binary one socket.io-msgpack-parser's. Until then, the default's.
    private var parser = Parser.undecided
    /// The loop's converter to msgpack, once the client has shown it speaks it.
    private var transcoder: MessagePackTranscoder?

    private enum Parser {
        case undecided
        case json
        case messagePack
    }
    private var sockets: [String: SocketIOSocket] = [:]
    private var pendingNamespaces: Set<String> = []
    private var connectTimer: Scheduled<Void>?
    private var isClosed = false

    init(session: EngineIOSession, router: SocketIORouter) {
        self.session = session
        self.eventLoop = session.eventLoop
        self.router = router
        self.decoder = SocketIOPacketDecoder(
            maxAttachments: router.configuration.maxAttachments, maxDepth: router.configuration.maxJSONDepth
        )
        connectTimer = eventLoop.scheduleTask(in: router.configuration.connectTimeout) { [self] in
            if sockets.isEmpty && pendingNamespaces.isEmpty { session.close() }
        }
    }

    func write(_ packet: EncodedSocketIOPacket, volatile: Bool = false) {
        if let transcoder {
            guard let converted = transcoder.messagePack(of: packet) else { return }
            if volatile { _ = session.sendIfWritable(converted) } else { session.send(converted) }
            return
        }
        if volatile {
            // All or nothing: the attachments go only if the packet itself went.
            guard session.sendIfWritable(packet.text) else { return }
        } else {
            session.send(packet.text)
        }
        for attachment in packet.attachments { session.send(attachment) }
    }

    // MARK: EngineIOSessionHandler

    func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) {
        if case .undecided = parser {
            if case .binary = message {
                parser = .messagePack
                transcoder = router.transcoders.value(for: eventLoop)
            } else {
                parser = .json
            }
        }
        let packet: SocketIOPacket?
        do {
            switch (parser, message) {
            case (.messagePack, .binary(let bytes)):
                packet = try SocketIOPacket(messagePack: bytes, maxDepth: router.configuration.maxJSONDepth)
            case (.messagePack, .text):
                throw SocketIOParseError(reason: "a text packet from a msgpack client")
            default:
                packet = try decoder.decode(message)
            }
        } catch {
            close(reason: .parseError)
            return
        }
        guard let packet else { return }
        let socket = sockets[packet.namespace]
        switch (packet.type, socket) {
        case (.connect, nil):
            connect(packet)
        case (.disconnect, let socket?):
            sockets[packet.namespace] = nil
            socket.didClose(.clientNamespaceDisconnect)
        case (.event, let socket?), (.ack, let socket?), (.binaryEvent, let socket?), (.binaryAck, let socket?):
            socket.handle(packet)
        case (_, nil) where packet.type != .connectError && pendingNamespaces.contains(packet.namespace):
            // Sent before the CONNECT answer, while the middlewares run: dropped, as the
            // reference drops them.
            break
        default:
            // A CONNECT to a namespace already joined, a packet for one never joined, or a
            // CONNECT_ERROR from a client: the reference closes the connection.
            close(reason: .parseError)
        }
    }

    func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) {
        closeSockets(SocketIODisconnectReason(reason))
    }

    func sessionDidUpgrade(_ session: EngineIOSession) {
        guard let instrument = router.instruments.instrument else { return }
        for socket in sockets.values { instrument.socketUpgraded(socket) }
    }

    /// Tells the instrument, if it wants, of an event written to `socket`.
    func instrumentSent(_ packet: EncodedSocketIOPacket, to socket: SocketIOSocket) {
        guard let instrument = router.instruments.instrument, instrument.wantsSentEvents(on: socket.namespace),
            let event = router.sentEventDecoders.value(for: eventLoop).event(of: packet)
        else { return }
        instrument.socket(socket, sent: event)
    }

    // MARK: Namespaces

    private func connect(_ packet: SocketIOPacket) {
        connectTimer?.cancel()
        connectTimer = nil
        guard let namespace = router.namespace(named: packet.namespace) else {
            let error = SocketIOPacket(type: .connectError, namespace: packet.namespace, data: ["message": "Invalid namespace"])
            write(SocketIOPacketEncoder.encode(error))
            return
        }
        // A second CONNECT while the first one's middlewares run is ignored.
        guard !pendingNamespaces.contains(namespace.name) else { return }
        namespace.connect(self, auth: packet.data?.objectValue ?? [:])
    }

    func connectionPending(_ namespace: String) {
        pendingNamespaces.insert(namespace)
    }

    func accept(_ socket: SocketIOSocket, missedPackets: [EncodedSocketIOPacket] = [], through: UInt64 = 0) {
        eventLoop.assertInEventLoop()
        pendingNamespaces.remove(socket.namespace.name)
        guard !isClosed else { return }
        sockets[socket.namespace.name] = socket
        socket.didConnect(missedPackets: missedPackets, through: through)
    }

    func refuse(_ socket: SocketIOSocket, _ error: SocketIOConnectError) {
        eventLoop.assertInEventLoop()
        pendingNamespaces.remove(socket.namespace.name)
        guard !isClosed else { return }
        var payload: JSONObject = ["message": .string(error.message)]
        if let data = error.data { payload["data"] = data }
        write(SocketIOPacketEncoder.encode(SocketIOPacket(type: .connectError, namespace: socket.namespace.name, data: .object(payload))))
    }

    /// Server-side disconnect of one socket: the client is told, the socket closes.
    func disconnect(_ socket: SocketIOSocket) {
        eventLoop.assertInEventLoop()
        guard sockets[socket.namespace.name] === socket else { return }
        sockets[socket.namespace.name] = nil
        write(SocketIOPacketEncoder.encode(SocketIOPacket(type: .disconnect, namespace: socket.namespace.name)))
        socket.didClose(.serverNamespaceDisconnect)
    }

    /// Server-side disconnect of every socket, then of the connection.
    func disconnectAll() {
        for socket in Array(sockets.values) { disconnect(socket) }
        close()
    }

    /// Closes the Engine.IO session; the sockets hear of it through `didCloseWith`.
    func close() {
        session.close()
    }

    private func close(reason: SocketIODisconnectReason) {
        closeSockets(reason)
        session.close()
    }

    private func closeSockets(_ reason: SocketIODisconnectReason) {
        guard !isClosed else { return }
        isClosed = true
        connectTimer?.cancel()
        connectTimer = nil
        let closing = sockets
        sockets = [:]
        for socket in closing.values { socket.didClose(reason) }
    }
}
