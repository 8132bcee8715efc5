import EngineIO
import NIOCore

/// Settings of a Socket.IO server. The defaults are the reference server's.
public struct SocketIOConfiguration: Sendable {
    /// The transport underneath: path, heartbeat, limits, CORS.
    public var engineIO = EngineIOConfiguration()
    /// How long a client may stay connected without joining any namespace.
    public var connectTimeout: TimeAmount = .seconds(45)
    /// Connection-state recovery; nil (the default) turns it off.
    public var connectionStateRecovery: ConnectionStateRecovery?
    /// The most binary attachments one packet may announce.
    public var maxAttachments = 10
    /// The deepest nesting of arrays and objects accepted in a packet.
    public var maxJSONDepth = JSONParser.defaultMaxDepth
    /// Events a socket may send per second (a burst of as many is allowed); the rest are
    /// dropped unhandled. 0, the default, means no limit.
    public var maxEventsPerSecond: Int = 0
    /// Makes each namespace's adapter, given the namespace's local sockets and the recovery
    /// settings: `InMemoryAdapter` for one process (the default), a cluster adapter for
    /// several.
    public var adapter: @Sendable (_ host: any SocketIOAdapterHost, _ recovery: ConnectionStateRecovery?) -> any SocketIOAdapter = {
        InMemoryAdapter(host: $0, recovery: $1)
    }

    /// The reference server's defaults.
    public init() {}
}

/// Connection-state recovery: a client that loses its link gets its id, rooms, data and
/// the packets it missed back when it reconnects in time.
public struct ConnectionStateRecovery: Sendable {
    /// How long a disconnected session is kept, and how long packets are buffered.
    public var maxDisconnectionDuration: TimeAmount = .seconds(120)
    /// Whether a recovered socket skips the connection middlewares.
    public var skipMiddlewares = true
    /// The most packets buffered per namespace; older ones are dropped first, and a client
    /// whose offset was dropped is not recovered (it connects afresh).
    public var maxBufferedPackets = 100_000
    /// The most bytes buffered per namespace, counted as encoded on the wire.
    public var maxBufferedBytes = 64 << 20

    /// The reference server's defaults.
    public init() {}
}
