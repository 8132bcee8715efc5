import NIOCore
import NIOHTTP1

/// One message between two nodes' engines: a request of a session held by the other node,
/// its answer, and the frames of a WebSocket one node holds for a session of the other.
///
/// The node that received the client's request or WebSocket (the *front*) sends the first
/// kinds; the node that holds the session (the *owner*) answers with the others. Ids name a
/// request or a relayed WebSocket on the front node that issued them.
enum ClusterEnvelope: Equatable, Sendable {
    /// Front → owner: an HTTP request for a session of the owner, with its body.
    case request(from: String, id: UInt64, head: HTTPRequestHead, body: ByteBuffer)
    /// Front → owner: the connection of request `id` closed before its answer (a held GET
    /// whose client gave up).
    case requestGone(from: String, id: UInt64)
    /// Owner → front: the answer to request `id`.
    case response(id: UInt64, status: UInt16, headers: HTTPHeaders, body: ByteBuffer)
    /// Front → owner: a WebSocket opened for a session of the owner (an upgrade).
    case webSocketOpened(from: String, id: UInt64, head: HTTPRequestHead)
    /// Front → owner: a message the client sent on WebSocket `id`, the `sequence`th (from 1).
    case webSocketReceived(from: String, id: UInt64, sequence: UInt64, binary: Bool, data: ByteBuffer)
    /// Front → owner: WebSocket `id` closed (`error`: without a clean close).
    case webSocketClosed(from: String, id: UInt64, error: Bool)
    /// Front → owner: WebSocket `id`'s backlog crossed its bound (`writable` false) or went
    /// back under it, so that the owner's producers wait for the client as they would for
    /// one of its own sockets.
    case webSocketWritability(from: String, id: UInt64, writable: Bool)
    /// Owner → front: packets to write on WebSocket `id`, in order; the `sequence`th such
    /// message (from 1). A relay that sees a number skipped (the bus lost a message) closes,
    /// so that the client reconnects and is recovered instead of missing packets unaware.
    case webSocketWrite(id: UInt64, sequence: UInt64, packets: [EngineIOOutboundPacket])
    /// Owner → front: the same packets for several relayed WebSockets (a broadcast), each
    /// with its write's number: the packets cross the bus once, not once per recipient.
    case webSocketBroadcast(targets: [RelayTarget], packets: [EngineIOOutboundPacket])
    /// Owner → front: close WebSocket `id` with `code`.
    case webSocketClose(id: UInt64, code: UInt16)
    /// Front → owner: sent every second to each owner this node relays or forwards for: the
    /// bus says whether the owner still listens, and the owner closes each of `relays` (its
    /// WebSockets relayed here) that it no longer knows (its close was lost).
    case probe(from: String, relays: [UInt64])
    /// Several messages for one node, in order: what a node sends another within one turn
    /// of its loop (a broadcast to many WebSockets relayed by one node) goes as one message.
    case batch([ClusterEnvelope])

    private enum Kind: UInt8 {
        case request = 1, requestGone, response, webSocketOpened, webSocketReceived, webSocketClosed, webSocketWrite, webSocketClose, probe
        case batch, webSocketBroadcast, webSocketWritability
    }

    /// A relayed WebSocket and the number of a write to it.
    struct RelayTarget: Hashable, Sendable {
        var id: UInt64
        var sequence: UInt64
    }

    /// The node that sent a front-to-owner message, which the answer goes to.
    var sender: String? {
        switch self {
        case .request(let from, _, _, _), .requestGone(let from, _), .webSocketOpened(let from, _, _),
            .webSocketReceived(let from, _, _, _, _), .webSocketClosed(let from, _, _), .webSocketWritability(let from, _, _),
            .probe(let from, _):
            from
        case .response, .webSocketWrite, .webSocketBroadcast, .webSocketClose, .batch:
            nil
        }
    }

    // MARK: Encoding

    func encoded() -> ByteBuffer {
        var buffer = ByteBuffer()
        encode(into: &buffer)
        return buffer
    }

    private func encode(into buffer: inout ByteBuffer) {
        switch self {
        case .request(let from, let id, let head, let body):
            buffer.writeInteger(Kind.request.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
            buffer.writeHead(head)
            buffer.writeField(body)
        case .requestGone(let from, let id):
            buffer.writeInteger(Kind.requestGone.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
        case .response(let id, let status, let headers, let body):
            buffer.writeInteger(Kind.response.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(status)
            buffer.writeHeaders(headers)
            buffer.writeField(body)
        case .webSocketOpened(let from, let id, let head):
            buffer.writeInteger(Kind.webSocketOpened.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
            buffer.writeHead(head)
        case .webSocketReceived(let from, let id, let sequence, let binary, let data):
            buffer.writeInteger(Kind.webSocketReceived.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
            buffer.writeInteger(sequence)
            buffer.writeInteger(UInt8(binary ? 1 : 0))
            buffer.writeField(data)
        case .webSocketClosed(let from, let id, let error):
            buffer.writeInteger(Kind.webSocketClosed.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
            buffer.writeInteger(UInt8(error ? 1 : 0))
        case .webSocketWritability(let from, let id, let writable):
            buffer.writeInteger(Kind.webSocketWritability.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(id)
            buffer.writeInteger(UInt8(writable ? 1 : 0))
        case .webSocketWrite(let id, let sequence, let packets):
            buffer.writeInteger(Kind.webSocketWrite.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(sequence)
            buffer.writePackets(packets)
        case .webSocketBroadcast(let targets, let packets):
            buffer.writeInteger(Kind.webSocketBroadcast.rawValue)
            buffer.writeInteger(UInt32(targets.count))
            for target in targets {
                buffer.writeInteger(target.id)
                buffer.writeInteger(target.sequence)
            }
            buffer.writePackets(packets)
        case .webSocketClose(let id, let code):
            buffer.writeInteger(Kind.webSocketClose.rawValue)
            buffer.writeInteger(id)
            buffer.writeInteger(code)
        case .probe(let from, let relays):
            buffer.writeInteger(Kind.probe.rawValue)
            buffer.writeField(from)
            buffer.writeInteger(UInt32(relays.count))
            for id in relays { buffer.writeInteger(id) }
        case .batch(let messages):
            buffer.writeInteger(Kind.batch.rawValue)
            buffer.writeInteger(UInt32(messages.count))
            for message in messages {
                // Each one length-prefixed, so that one is decoded alone.
                let start = buffer.writerIndex
                buffer.writeInteger(UInt32(0))
                message.encode(into: &buffer)
                buffer.setInteger(UInt32(buffer.writerIndex - start - 4), at: start)
            }
        }
    }

    /// Decodes a message; nil for anything malformed (a message is never trusted to be
    /// well formed, even from another node: no count in it is allocated before it is read).
    init?(decoding message: ByteBuffer) {
        var buffer = message
        guard let raw = buffer.readInteger(as: UInt8.self), let kind = Kind(rawValue: raw) else { return nil }
        switch kind {
        case .request:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self),
                let head = buffer.readHead(), let body = buffer.readField()
            else { return nil }
            self = .request(from: from, id: id, head: head, body: body)
        case .requestGone:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self) else { return nil }
            self = .requestGone(from: from, id: id)
        case .response:
            guard let id = buffer.readInteger(as: UInt64.self), let status = buffer.readInteger(as: UInt16.self),
                let headers = buffer.readHeaders(), let body = buffer.readField()
            else { return nil }
            self = .response(id: id, status: status, headers: headers, body: body)
        case .webSocketOpened:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self), let head = buffer.readHead() else {
                return nil
            }
            self = .webSocketOpened(from: from, id: id, head: head)
        case .webSocketReceived:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self),
                let sequence = buffer.readInteger(as: UInt64.self), let binary = buffer.readInteger(as: UInt8.self),
                let data = buffer.readField()
            else { return nil }
            self = .webSocketReceived(from: from, id: id, sequence: sequence, binary: binary == 1, data: data)
        case .webSocketClosed:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self),
                let error = buffer.readInteger(as: UInt8.self)
            else { return nil }
            self = .webSocketClosed(from: from, id: id, error: error == 1)
        case .webSocketWritability:
            guard let from = buffer.readStringField(), let id = buffer.readInteger(as: UInt64.self),
                let writable = buffer.readInteger(as: UInt8.self)
            else { return nil }
            self = .webSocketWritability(from: from, id: id, writable: writable == 1)
        case .webSocketWrite:
            guard let id = buffer.readInteger(as: UInt64.self), let sequence = buffer.readInteger(as: UInt64.self),
                let packets = buffer.readPackets()
            else { return nil }
            self = .webSocketWrite(id: id, sequence: sequence, packets: packets)
        case .webSocketBroadcast:
            guard let count = buffer.readInteger(as: UInt32.self) else { return nil }
            var targets: [RelayTarget] = []
            for _ in 0..<count {
                guard let id = buffer.readInteger(as: UInt64.self), let sequence = buffer.readInteger(as: UInt64.self) else { return nil }
                targets.append(RelayTarget(id: id, sequence: sequence))
            }
            guard let packets = buffer.readPackets() else { return nil }
            self = .webSocketBroadcast(targets: targets, packets: packets)
        case .webSocketClose:
            guard let id = buffer.readInteger(as: UInt64.self), let code = buffer.readInteger(as: UInt16.self) else { return nil }
            self = .webSocketClose(id: id, code: code)
        case .probe:
            guard let from = buffer.readStringField(), let count = buffer.readInteger(as: UInt32.self) else { return nil }
            var relays: [UInt64] = []
            for _ in 0..<count {
                guard let id = buffer.readInteger(as: UInt64.self) else { return nil }
                relays.append(id)
            }
            self = .probe(from: from, relays: relays)
        case .batch:
            guard let count = buffer.readInteger(as: UInt32.self) else { return nil }
            var messages: [ClusterEnvelope] = []
            for _ in 0..<count {
                // A batch holds no batch: one level, whatever the bytes say.
                guard let bytes = buffer.readField(), bytes.getInteger(at: bytes.readerIndex, as: UInt8.self) != Kind.batch.rawValue,
                    let message = ClusterEnvelope(decoding: bytes)
                else { return nil }
                messages.append(message)
            }
            self = .batch(messages)
        }
        guard buffer.readableBytes == 0 else { return nil }
    }
}

extension ByteBuffer {
    fileprivate mutating func writePackets(_ packets: [EngineIOOutboundPacket]) {
        writeInteger(UInt32(packets.count))
        for packet in packets {
            writeInteger(UInt8(packet.kind == .binary ? 1 : 0))
            writeField(packet.bytes)
        }
    }

    fileprivate mutating func readPackets() -> [EngineIOOutboundPacket]? {
        guard let count = readInteger(as: UInt32.self) else { return nil }
        var packets: [EngineIOOutboundPacket] = []
        for _ in 0..<count {
            guard let binary = readInteger(as: UInt8.self), let bytes = readField() else { return nil }
            packets.append(EngineIOOutboundPacket(kind: binary == 1 ? .binary : .text, bytes: bytes))
        }
        return packets
    }

    fileprivate mutating func writeField(_ bytes: ByteBuffer) {
        writeInteger(UInt32(bytes.readableBytes))
        writeImmutableBuffer(bytes)
    }

    fileprivate mutating func writeField(_ string: String) {
        writeInteger(UInt32(string.utf8.count))
        writeString(string)
    }

    fileprivate mutating func writeHeaders(_ headers: HTTPHeaders) {
        writeInteger(UInt32(headers.count))
        for (name, value) in headers {
            writeField(name)
            writeField(value)
        }
    }

    fileprivate mutating func writeHead(_ head: HTTPRequestHead) {
        writeField(head.method.rawValue)
        writeField(head.uri)
        writeHeaders(head.headers)
    }

    fileprivate mutating func readField() -> ByteBuffer? {
        guard let length = readInteger(as: UInt32.self) else { return nil }
        return readSlice(length: Int(length))
    }

    fileprivate mutating func readStringField() -> String? {
        guard let length = readInteger(as: UInt32.self) else { return nil }
        return readString(length: Int(length))
    }

    fileprivate mutating func readHeaders() -> HTTPHeaders? {
        guard let count = readInteger(as: UInt32.self) else { return nil }
        var headers = HTTPHeaders()
        for _ in 0..<count {
            guard let name = readStringField(), let value = readStringField() else { return nil }
            headers.add(name: name, value: value)
        }
        return headers
    }

    fileprivate mutating func readHead() -> HTTPRequestHead? {
        guard let method = readStringField(), let uri = readStringField(), let headers = readHeaders() else { return nil }
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: uri, headers: headers)
    }
}
