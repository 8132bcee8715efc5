import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How `SocketIOAdmin` serves the admin UI, with the reference's (`instrument(io, opts)`)
/// defaults.
public struct SocketIOAdminConfiguration: Sendable {
    /// How much the admin UI is told.
    public enum Mode: String, Sendable, CaseIterable {
        /// Every socket with its handshake and rooms (`all_sockets`), and every change live:
        /// connections, upgrades, rooms joined and left, events received and sent.
        case development
        /// Only `server_stats` (counts and aggregated events): nothing per socket, which
        /// costs per socket and per recipient.
        case production
    }

    /// The admin UI's namespace.
    public var namespace = "/admin"
    /// What the admin UI must present; nil lets anyone in (the reference's `auth: false`),
    /// which must be asked for explicitly.
    public var credentials: SocketIOAdminCredentials?
    /// No commands (`emit`, `join`, `leave`, `_disconnect`): the UI only watches.
    public var readonly = false
    /// How much the UI is told; the reference's default is development.
    public var mode = Mode.development
    /// The server's name in the UI: host name and process id, so that several nodes on one
    /// host show apart (the reference uses the host name alone unless in a Node cluster).
    public var serverID = SocketIOAdminConfiguration.defaultServerID
    /// The most bytes of an event's arguments shown in `event_received` and `event_sent`;
    /// a larger event is shown by its name and a note. Events sent are reported once per
    /// recipient: this bounds what one broadcast can make the server queue for the UI.
    public var maxReportedEventBytes = 2048
    /// How often each node sends `server_stats`.
    public var statsInterval = TimeAmount.seconds(2)
    /// The origin of the hosted UI, whose pages may connect to the admin namespace only
    /// (their CONNECT to any other is refused); nil for none. The engine's CORS policy must
    /// accept it, with credentials, for the UI to reach the server at all.
    public var uiOrigin: String? = "https://admin.socket.io"

    /// A configuration with `credentials` (nil: no authentication) and the other defaults.
    public init(credentials: SocketIOAdminCredentials?) {
        self.credentials = credentials
    }

    /// `hostname#pid`.
    public static var defaultServerID: String { "\(hostName)#\(getpid())" }

    static let hostName: String = {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let name = buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        return String(decoding: name, as: UTF8.self)
    }()
}
