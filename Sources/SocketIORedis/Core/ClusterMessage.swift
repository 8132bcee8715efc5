import NIOCore
import SocketIO

/// A broadcast as it travels between nodes: one packet, already encoded, and whom it is
/// for. The origin encodes the packet once; each node rebuilds its frame without parsing
/// JSON, appending the offset the bus gave it (`EncodedSocketIOPacket(encodedText:…)`).
///
/// It travels inside an `AdapterMessage`, which carries the format's version. Layout
/// (integers big-endian): flags (bit 0: the text awaits an offset;
/// bit 1: volatile); the origin, the sending node's id as a `UInt8`-length string and the
/// broadcast's serial number there (`UInt64`); the rooms and the excepted rooms, each a `UInt16` count of `UInt32`-length strings; the
/// text as a `UInt32`-length string; the attachments, a `UInt16` count of `UInt32`-length
/// byte strings. The bus (Redis) is shared with other programs and deployments, so reading
/// checks every length against what is left.
struct ClusterMessage: Equatable, Sendable {
    var rooms: [String]
    var except: [String]
    /// Socket.IO text of the packet; when `awaitsOffset`, without the closing `]`.
    var text: ByteBuffer
    var attachments: [ByteBuffer]
    var awaitsOffset: Bool
    var volatile: Bool
    /// Who sent it: the node, and the broadcast's serial number there. A node that delivered
    /// its own broadcast without the bus's answer (the command timed out, but the bus may have
    /// run it) knows it again when it comes back on the subscription.
    var origin: Origin

    struct Origin: Hashable, Sendable {
        var node: String
        var serial: UInt64
    }

    /// The message for `packet`, encoded once; `numbered`: it will get an offset.
    init(packet: SocketIOPacket, filter: BroadcastFilter, numbered: Bool, origin: Origin) {
        let encoded = SocketIOPacketEncoder.encode(packet)
        var text = encoded.encodedText
        // Only an event's argument list can take an offset (as `encode(_:offset:)`).
        let takesOffset = numbered && text.readableBytes > 0 && text.getInteger(at: text.writerIndex - 1, as: UInt8.self) == UInt8(ascii: "]")
        if takesOffset { text.moveWriterIndex(to: text.writerIndex - 1) }
        self.init(
            rooms: filter.rooms.sorted(), except: filter.except.sorted(), text: text,
            attachments: encoded.encodedAttachments, awaitsOffset: takesOffset,
            volatile: filter.volatile, origin: origin
        )
    }

    init(
        rooms: [String], except: [String], text: ByteBuffer, attachments: [ByteBuffer], awaitsOffset: Bool, volatile: Bool = false,
        origin: Origin
    ) {
        self.origin = origin
        self.volatile = volatile
        self.rooms = rooms
        self.except = except
        self.text = text
        self.attachments = attachments
        self.awaitsOffset = awaitsOffset
    }

    var filter: BroadcastFilter { BroadcastFilter(rooms: Set(rooms), except: Set(except), volatile: volatile) }

    /// The packet this node writes to its sockets.
    func packet(offset: UInt64?) -> EncodedSocketIOPacket {
        guard awaitsOffset else { return EncodedSocketIOPacket(encodedText: text, attachments: attachments) }
        if let offset { return EncodedSocketIOPacket(encodedText: text, attachments: attachments, offset: offset) }
        // Never numbered after all (the bus was away): closed as it was.
        var closed = text
        closed.writeInteger(UInt8(ascii: "]"))
        return EncodedSocketIOPacket(encodedText: closed, attachments: attachments)
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(awaitsOffset ? 1 : 0) | UInt8(volatile ? 2 : 0))
        buffer.writeInteger(UInt8(origin.node.utf8.count))
        buffer.writeString(origin.node)
        buffer.writeInteger(origin.serial)
        for list in [rooms, except] {
            buffer.writeInteger(UInt16(list.count))
            for room in list {
                buffer.writeInteger(UInt32(room.utf8.count))
                buffer.writeString(room)
            }
        }
        buffer.writeInteger(UInt32(text.readableBytes))
        buffer.writeImmutableBuffer(text)
        buffer.writeInteger(UInt16(attachments.count))
        for attachment in attachments {
            buffer.writeInteger(UInt32(attachment.readableBytes))
            buffer.writeImmutableBuffer(attachment)
        }
    }

    var bytes: ByteBuffer {
        var buffer = ByteBuffer()
        write(to: &buffer)
        return buffer
    }

    /// Reads a message that ends the buffer; nil for anything malformed.
    init?(reading buffer: inout ByteBuffer) {
        guard let flags = buffer.readInteger(as: UInt8.self),
            let nodeLength = buffer.readInteger(as: UInt8.self), let node = buffer.readString(length: Int(nodeLength)),
            let serial = buffer.readInteger(as: UInt64.self)
        else { return nil }
        var lists: [[String]] = []
        for _ in 0..<2 {
            guard let count = buffer.readInteger(as: UInt16.self) else { return nil }
            var list: [String] = []
            for _ in 0..<count {
                guard let length = buffer.readInteger(as: UInt32.self), let room = buffer.readString(length: Int(length)) else { return nil }
                list.append(room)
            }
            lists.append(list)
        }
        guard let textLength = buffer.readInteger(as: UInt32.self), let text = buffer.readSlice(length: Int(textLength)),
            let count = buffer.readInteger(as: UInt16.self)
        else { return nil }
        var attachments: [ByteBuffer] = []
        for _ in 0..<count {
            guard let length = buffer.readInteger(as: UInt32.self), let bytes = buffer.readSlice(length: Int(length)) else { return nil }
            attachments.append(bytes)
        }
        guard buffer.readableBytes == 0 else { return nil }
        self.init(
            rooms: lists[0], except: lists[1], text: text, attachments: attachments, awaitsOffset: flags & 1 == 1, volatile: flags & 2 == 2,
            origin: Origin(node: node, serial: serial)
        )
    }
}
