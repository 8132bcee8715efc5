import NIOCore

/// Socket.IO packets in the format of socket.io-msgpack-parser: each packet one
/// MessagePack map of `type`, `nsp`, and `data` and `id` when present, carried as one binary
/// Engine.IO message. Binary values stay inside `data` as MessagePack binary, so there are no
/// attachments, and EVENT and ACK never become their binary types (5 and 6 do not exist here).
extension SocketIOPacket {
    /// The packet as socket.io-msgpack-parser encodes it.
    public var messagePack: ByteBuffer {
        var buffer = ByteBuffer()
        let fields = 2 + (data == nil ? 0 : 1) + (id == nil ? 0 : 1)
        buffer.writeInteger(UInt8(0x80 | fields))
        MessagePackWriter.write("type", to: &buffer)
        MessagePackWriter.write(.number(Double(type.rawValue)), to: &buffer)
        if let data {
            MessagePackWriter.write("data", to: &buffer)
            MessagePackWriter.write(data, to: &buffer)
        }
        MessagePackWriter.write("nsp", to: &buffer)
        MessagePackWriter.write(.string(namespace), to: &buffer)
        if let id {
            MessagePackWriter.write("id", to: &buffer)
            MessagePackWriter.write(.number(Double(id)), to: &buffer)
        }
        return buffer
    }

    /// Reads a packet as socket.io-msgpack-parser encodes it.
    ///
    /// Keys other than `type`, `nsp`, `data` and `id` are ignored (the JavaScript client sends
    /// an `options` key beside them), and so are a nil `data` or `id`. The checks are the
    /// parser's (a type from 0 to 4, a string namespace, a whole non-negative id) and the
    /// JSON decoder's (the data's shape for the type, no reserved event name).
    public init(messagePack bytes: ByteBuffer, maxDepth: Int = JSONParser.defaultMaxDepth) throws(SocketIOParseError) {
        let value: JSONValue
        do {
            value = try bytes.withUnsafeReadableBytes { raw throws(MessagePackError) in
                try MessagePackReader.parse(bytes: raw, maxDepth: maxDepth)
            }
        } catch {
            throw SocketIOParseError(reason: "invalid payload")
        }
        guard let map = value.objectValue else { throw SocketIOParseError(reason: "invalid payload") }
        guard let rawType = map["type"]?.intValue, (0...4).contains(rawType), let type = SocketIOPacketType(rawValue: UInt8(rawType)) else {
            throw SocketIOParseError(reason: "unknown packet type")
        }
        guard case .string(let namespace)? = map["nsp"] else { throw SocketIOParseError(reason: "invalid namespace") }
        var id: Int?
        if let rawID = map["id"], rawID != .null {
            guard let value = rawID.intValue, value >= 0, value <= SocketIOPacketDecoder.maxAckID else {
                throw SocketIOParseError(reason: "invalid ack id")
            }
            id = value
        }
        // (JSONValue takes a nil literal as `.null`: the absence is spelled out.)
        let data: JSONValue? = map["data"] == .null ? JSONValue?.none : map["data"]
        self.init(type: type, namespace: namespace, id: id, data: data)
        guard SocketIOPacketDecoder.isValid(self) else { throw SocketIOParseError(reason: "invalid payload") }
    }
}
