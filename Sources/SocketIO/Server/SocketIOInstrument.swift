import Atomics
import EngineIO

/// Watches what happens to a server's sockets, for a monitor such as the admin UI
/// (`SocketIOAdmin`), as the reference's `instrument(io)` watches a Node server.
///
/// Install one with `SocketIOServer.instrument(_:)`. Every method is called on the socket's
/// event loop, in the order things happened to that socket, and must return quickly (hop
/// elsewhere for slow work). Each has a default that does nothing.
public protocol SocketIOInstrument: AnyObject, Sendable {
    /// Whether `socket` may connect, asked before the namespace's middlewares run: a
    /// refusal goes to the client as its CONNECT_ERROR.
    func refusal(for socket: SocketIOSocket) -> SocketIOConnectError?
    /// `socket` connected (its CONNECT answer is written).
    func socketConnected(_ socket: SocketIOSocket)
    /// The connection beneath `socket` moved from polling to WebSocket.
    func socketUpgraded(_ socket: SocketIOSocket)
    /// `socket` disconnected; its rooms are left.
    func socketDisconnected(_ socket: SocketIOSocket, reason: SocketIODisconnectReason)
    /// `socket` joined `room` (not the room named by its id, which it is in from the start).
    func socket(_ socket: SocketIOSocket, joined room: String)
    /// `socket` left `room`.
    func socket(_ socket: SocketIOSocket, left room: String)
    /// `socket`'s client sent an event, `[name, arguments…]`, before its handlers run.
    func socket(_ socket: SocketIOSocket, received event: [JSONValue])
    /// An event, `[name, arguments…]`, was written to `socket`'s client: its own emits
    /// and every broadcast that reached it. Called per recipient, so only for the
    /// namespaces where the instrument wants it (`wantsSentEvents(on:)`); a packet is
    /// decoded once per event loop, however many sockets there it reaches.
    func socket(_ socket: SocketIOSocket, sent event: [JSONValue])
    /// Whether `socket(_:sent:)` should be called for sockets of `namespace`: decoding what
    /// is written costs per recipient, which a monitor in production mode does not pay, and
    /// a monitor's own namespace would report its reports.
    func wantsSentEvents(on namespace: SocketIONamespace) -> Bool
}

extension SocketIOInstrument {
    /// Refuses nobody.
    public func refusal(for socket: SocketIOSocket) -> SocketIOConnectError? { nil }
    /// Ignores connections.
    public func socketConnected(_ socket: SocketIOSocket) {}
    /// Ignores upgrades.
    public func socketUpgraded(_ socket: SocketIOSocket) {}
    /// Ignores disconnections.
    public func socketDisconnected(_ socket: SocketIOSocket, reason: SocketIODisconnectReason) {}
    /// Ignores rooms joined.
    public func socket(_ socket: SocketIOSocket, joined room: String) {}
    /// Ignores rooms left.
    public func socket(_ socket: SocketIOSocket, left room: String) {}
    /// Ignores events received.
    public func socket(_ socket: SocketIOSocket, received event: [JSONValue]) {}
    /// Ignores events sent.
    public func socket(_ socket: SocketIOSocket, sent event: [JSONValue]) {}
    /// Wants no events sent: nothing is decoded for it.
    public func wantsSentEvents(on namespace: SocketIONamespace) -> Bool { false }
}

/// The server's instrument, set once: read with one atomic load wherever a hook may fire,
/// so a server without one pays a nil check and no lock.
final class InstrumentSlot: Sendable {
    private final class Box: AtomicReference, Sendable {
        let instrument: any SocketIOInstrument
        init(_ instrument: any SocketIOInstrument) { self.instrument = instrument }
    }

    private let box = ManagedAtomicLazyReference<Box>()

    var instrument: (any SocketIOInstrument)? { box.load()?.instrument }

    /// Installs `instrument`; false if one was installed already.
    func install(_ instrument: any SocketIOInstrument) -> Bool {
        let new = Box(instrument)
        return box.storeIfNilThenLoad(new) === new
    }
}

/// Decodes the packets written to sockets back into their events, for an instrument that
/// wants them: one per event loop, keeping the last packet decoded, so a broadcast is
/// decoded once per loop however many sockets there it reaches.
final class SentEventDecoder: @unchecked Sendable {
    // @unchecked Sendable: kept in the router's per-loop registry and used only on that loop.

    private var last: (text: EngineIOOutboundPacket, event: [JSONValue]?)?
    /// How many packets were decoded (not taken from `last`), for tests.
    private(set) var decodings = 0

    /// The event `[name, arguments…]` of `packet`, nil for other packets (acks, CONNECT…).
    func event(of packet: EncodedSocketIOPacket) -> [JSONValue]? {
        if let last, last.text.isSameEncoding(as: packet.text) { return last.event }
        let event = Self.decode(packet)
        decodings += 1
        last = (packet.text, event)
        return event
    }

    private static func decode(_ packet: EncodedSocketIOPacket) -> [JSONValue]? {
        guard let text = packet.text.textData else { return nil }
        var decoder = SocketIOPacketDecoder(maxAttachments: .max, maxDepth: .max)
        do {
            var decoded = try decoder.decode(.text(text))
            for attachment in packet.attachments { decoded = try decoder.decode(.binary(attachment.bytes)) }
            guard let decoded, decoded.type == .event || decoded.type == .binaryEvent, case .array(var values)? = decoded.data
            else { return nil }
            // A recoverable packet's offset is the server's, not the event's.
            if packet.sequence != nil, !values.isEmpty { values.removeLast() }
            return values
        } catch {
            return nil
        }
    }
}
