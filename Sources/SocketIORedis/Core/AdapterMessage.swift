import NIOCore
import SocketIO

/// Every message between the cluster adapters of one namespace, as one type (the reference's
/// `ClusterAdapter` has one message type enum too): a broadcast, a request to the other
/// nodes and its answers, a server-side event, a session taken over.
///
/// Layout (integers big-endian): version `3`, a kind byte, then the kind's fields: strings
/// as a length (`UInt8` for node and request ids, `UInt16` for socket ids and pids, `UInt32`
/// for JSON text) and UTF-8; a broadcast, the rest of the message (`ClusterMessage`). JSON
/// keeps its binary values (`ClusterJSON`). Reading checks every length against what is
/// left and refuses trailing bytes: the bus is shared with other programs.
enum AdapterMessage: Equatable, Sendable {
    /// A packet for the sockets of every node.
    case broadcast(ClusterMessage)
    /// A request of node `from` to the others, answered with `response`s tagged `id`.
    case request(from: String, id: String, JSONValue)
    /// One node's answer to the request `id` of node `to`.
    case response(to: String, id: String, JSONValue)
    /// A server-side event (`serverSideEmit`) of node `from`.
    case serverSideEvent(from: String, arguments: [JSONValue])
    /// Node `from` recovered the session `pid` (socket `socket`): any other node that
    /// still holds it lets it go.
    case takeover(from: String, pid: String, socket: String)

    static let version: UInt8 = 3

    private enum Kind: UInt8 {
        case broadcast = 1, request, response, serverSideEvent, takeover
    }

    var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeInteger(Self.version)
        switch self {
        case .broadcast(let message):
            buffer.writeInteger(Kind.broadcast.rawValue)
            message.write(to: &buffer)
        case .request(let node, let id, let body):
            buffer.writeInteger(Kind.request.rawValue)
            Self.write([node, id], as: UInt8.self, to: &buffer)
            Self.write([ClusterJSON.text(body)], as: UInt32.self, to: &buffer)
        case .response(let node, let id, let body):
            buffer.writeInteger(Kind.response.rawValue)
            Self.write([node, id], as: UInt8.self, to: &buffer)
            Self.write([ClusterJSON.text(body)], as: UInt32.self, to: &buffer)
        case .serverSideEvent(let node, let arguments):
            buffer.writeInteger(Kind.serverSideEvent.rawValue)
            Self.write([node], as: UInt8.self, to: &buffer)
            Self.write([ClusterJSON.text(.array(arguments))], as: UInt32.self, to: &buffer)
        case .takeover(let node, let pid, let socket):
            buffer.writeInteger(Kind.takeover.rawValue)
            Self.write([node], as: UInt8.self, to: &buffer)
            Self.write([pid, socket], as: UInt16.self, to: &buffer)
        }
        return buffer
    }

    /// Reads a whole message; nil for anything malformed, of another version, or followed
    /// by more bytes.
    init?(_ bytes: ByteBuffer) {
        var buffer = bytes
        guard buffer.readInteger(as: UInt8.self) == Self.version, let kind = buffer.readInteger(as: UInt8.self).flatMap(Kind.init) else {
            return nil
        }
        switch kind {
        case .broadcast:
            guard let message = ClusterMessage(reading: &buffer) else { return nil }
            self = .broadcast(message)
            return
        case .request, .response:
            guard let node = Self.read(UInt8.self, from: &buffer), let id = Self.read(UInt8.self, from: &buffer),
                let text = Self.read(UInt32.self, from: &buffer), let body = ClusterJSON.parse(text[...])
            else { return nil }
            self = kind == .request ? .request(from: node, id: id, body) : .response(to: node, id: id, body)
        case .serverSideEvent:
            guard let node = Self.read(UInt8.self, from: &buffer), let text = Self.read(UInt32.self, from: &buffer),
                let arguments = ClusterJSON.parse(text[...])?.arrayValue
            else { return nil }
            self = .serverSideEvent(from: node, arguments: arguments)
        case .takeover:
            guard let node = Self.read(UInt8.self, from: &buffer), let pid = Self.read(UInt16.self, from: &buffer),
                let socket = Self.read(UInt16.self, from: &buffer)
            else { return nil }
            self = .takeover(from: node, pid: pid, socket: socket)
        }
        guard buffer.readableBytes == 0 else { return nil }
    }

    private static func write<Length: FixedWidthInteger>(_ strings: [String], as: Length.Type, to buffer: inout ByteBuffer) {
        for string in strings {
            // Ids are short; a string too long for its length field is cut to what fits
            // (never the case for the ids the adapter makes).
            let bytes = Array(string.utf8.prefix(Int(Length.max)))
            buffer.writeInteger(Length(bytes.count))
            buffer.writeBytes(bytes)
        }
    }

    private static func read<Length: FixedWidthInteger>(_: Length.Type, from buffer: inout ByteBuffer) -> String? {
        guard let length = buffer.readInteger(as: Length.self) else { return nil }
        return buffer.readString(length: Int(length))
    }
}
