import EngineIO
import NIOCore

/// Turns packets encoded for the default parser into socket.io-msgpack-parser's form, for
/// the connections whose client speaks it (`SocketIOConnection` tells them by their first
/// packet). Everything inside the server, the adapters and the recovery buffer included,
/// carries the default encoding; a msgpack client's packets are converted on their way out.
///
/// One per event loop: a broadcast reaches the sockets on a loop one after the other with
/// the same encoded packet, so the last packet converted is kept and the next msgpack
/// recipient gets the same bytes. A broadcast is thus encoded once for JSON clients and
/// converted once per event loop for msgpack ones, never once per recipient.
final class MessagePackTranscoder: @unchecked Sendable {
    // @unchecked Sendable: kept in the router's per-loop registry and used only on that
    // loop, by the connections that live there.

    /// The last packet converted (held, so that its buffer cannot be reused meanwhile) and
    /// its msgpack form.
    private var last: (text: EngineIOOutboundPacket, converted: EngineIOOutboundPacket?)?
    /// How many packets were converted (not taken from `last`), for tests.
    private(set) var conversions = 0

    /// `packet` as one binary message in socket.io-msgpack-parser's form; nil if it does not
    /// decode (never for the server's own encodings).
    func messagePack(of packet: EncodedSocketIOPacket) -> EngineIOOutboundPacket? {
        if let last, last.text.isSameEncoding(as: packet.text) { return last.converted }
        let converted = Self.convert(packet)
        conversions += 1
        last = (packet.text, converted)
        return converted
    }

    private static func convert(_ packet: EncodedSocketIOPacket) -> EngineIOOutboundPacket? {
        guard let text = packet.text.textData else { return nil }
        // The server's own encodings: no limit a client's input has applies.
        var decoder = SocketIOPacketDecoder(maxAttachments: .max, maxDepth: .max)
        do {
            var decoded = try decoder.decode(.text(text))
            for attachment in packet.attachments {
                decoded = try decoder.decode(.binary(attachment.bytes))
            }
            guard let decoded else { return nil }
            return .message(.binary(decoded.messagePack))
        } catch {
            return nil
        }
    }
}
