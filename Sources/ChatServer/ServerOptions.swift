import ArgumentParser
import EngineIO
import Foundation
import NIOCore
import SocketIOAdmin

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What serves the chat (`--framework`).
enum ChatHost: String, ExpressibleByArgument, CaseIterable, Sendable {
    case hummingbird
    case nio
}

/// Command-line flags, each with an environment variable behind it; a flag wins over its
/// variable. The defaults are the Node reference server's.
struct ServerOptions: ParsableArguments {
    @Option(help: "Address to listen on. [env: HOST]")
    var host: String = ProcessInfo.processInfo.environment["HOST"] ?? "0.0.0.0"

    @Option(help: "Port to listen on. [env: PORT]")
    var port: Int = ProcessInfo.processInfo.environment["PORT"].flatMap(Int.init) ?? 3000

    @Option(
        help: """
            Event-loop threads, which carry the connections (each connection stays on one). \
            Default: one per core. [env: EVENT_LOOPS]
            """
    )
    var eventLoops: Int = ProcessInfo.processInfo.environment["EVENT_LOOPS"].flatMap(Int.init) ?? System.coreCount

    @Option(
        help: """
            hummingbird: the chat as a Hummingbird app (the page, /messages, /healthz, \
            /metrics, Socket.IO beside them). nio: Socket.IO alone on the engine's own \
            listener, no page and no HTTP routes, to measure what the app costs \
            (scripts/bench.sh). [env: FRAMEWORK]
            """
    )
    var framework: ChatHost = ProcessInfo.processInfo.environment["FRAMEWORK"].flatMap(ChatHost.init(rawValue:)) ?? .hummingbird

    @Option(help: "Where Socket.IO is mounted. [env: SOCKETIO_PATH]")
    var path: String = ProcessInfo.processInfo.environment["SOCKETIO_PATH"] ?? "/socket.io/"

    @Option(
        help: """
            Comma-separated origins allowed to connect from a browser, or * for any; \
            empty allows the server's own origin only. [env: CORS_ORIGINS]
            """
    )
    var corsOrigins: String = ProcessInfo.processInfo.environment["CORS_ORIGINS"] ?? ""

    @Option(
        help: """
            Comma-separated host names the server answers to (the Host header; *.example.com \
            for subdomains); others get 421. Empty answers any host. [env: ALLOWED_HOSTS]
            """
    )
    var allowedHosts: String = ProcessInfo.processInfo.environment["ALLOWED_HOSTS"] ?? ""

    @Option(help: "PEM certificate chain; with --tls-key, the server speaks HTTPS and WSS only. [env: TLS_CERT]")
    var tlsCert: String = ProcessInfo.processInfo.environment["TLS_CERT"] ?? ""

    @Option(help: "PEM private key for --tls-cert. [env: TLS_KEY]")
    var tlsKey: String = ProcessInfo.processInfo.environment["TLS_KEY"] ?? ""

    // With an inversion: a flag whose default is true (from the environment) must have one.
    @Flag(inversion: .prefixedNo, help: "Allow credentials (cookies) on cross-origin requests. [env: CORS_CREDENTIALS=1]")
    var corsCredentials: Bool = ProcessInfo.processInfo.environment["CORS_CREDENTIALS"] == "1"

    @Option(help: "Milliseconds between server pings. [env: PING_INTERVAL]")
    var pingInterval: Int64 = ProcessInfo.processInfo.environment["PING_INTERVAL"].flatMap(Int64.init) ?? 25_000

    @Option(help: "Milliseconds to wait for a pong. [env: PING_TIMEOUT]")
    var pingTimeout: Int64 = ProcessInfo.processInfo.environment["PING_TIMEOUT"].flatMap(Int64.init) ?? 20_000

    @Option(help: "Largest message or HTTP body accepted, in bytes. [env: MAX_HTTP_BUFFER_SIZE]")
    var maxHttpBufferSize: Int = ProcessInfo.processInfo.environment["MAX_HTTP_BUFFER_SIZE"].flatMap(Int.init) ?? 1_000_000

    @Option(help: "mysql://user:pass@host:port/db to store messages in MySQL/MariaDB; unset, an embedded SQLite database is used. [env: DATABASE_URL]")
    var databaseURL: String = ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""

    @Option(help: "redis://host:port of the Redis that joins this server to a cluster: every server sharing it and DATABASE_URL (MySQL) serves one chat; or redis-sentinel://host:port[,host:port...]/primary-name for the primary that Redis Sentinel names, followed through failovers. Unset, the server stands alone. [env: REDIS_URL]")
    var redisURL: String = ProcessInfo.processInfo.environment["REDIS_URL"] ?? ""

    @Option(help: "Prefix of the cluster's Redis keys and channels, so that deployments can share one Redis. [env: REDIS_KEY_PREFIX]")
    var redisKeyPrefix: String = ProcessInfo.processInfo.environment["REDIS_KEY_PREFIX"] ?? "socket.io"

    @Option(help: "Bytes a WebSocket client may fall behind before it counts as slow; 0 turns the check off. [env: MAX_OUTBOUND_BYTES]")
    var maxOutboundBytes: Int = ProcessInfo.processInfo.environment["MAX_OUTBOUND_BYTES"].flatMap(Int.init) ?? 1 << 20

    @Option(help: "Packets a polling client may have waiting for its next request; past that it is disconnected (it can recover). [env: MAX_POLLING_QUEUE]")
    var maxPollingQueue: Int = ProcessInfo.processInfo.environment["MAX_POLLING_QUEUE"].flatMap(Int.init) ?? 10_000

    @Option(help: "The most packets one polling response carries; more wait for the next request. python-socketio's clients drop a response of more than 16. [env: MAX_PACKETS_PER_POLL]")
    var maxPacketsPerPoll: Int = ProcessInfo.processInfo.environment["MAX_PACKETS_PER_POLL"].flatMap(Int.init) ?? 16

    @Option(help: "on: polling responses of at least --http-compression-threshold bytes are sent gzip- or deflate-encoded to clients that accept it, as the reference does; off: as they are. [env: HTTP_COMPRESSION]")
    var httpCompression: Switch = ProcessInfo.processInfo.environment["HTTP_COMPRESSION"].flatMap(Switch.init(rawValue:)) ?? .on

    @Option(help: "The smallest polling response compressed, in bytes. [env: HTTP_COMPRESSION_THRESHOLD]")
    var httpCompressionThreshold: Int = ProcessInfo.processInfo.environment["HTTP_COMPRESSION_THRESHOLD"].flatMap(Int.init) ?? 1024

    @Flag(inversion: .prefixedNo, help: "permessage-deflate on WebSocket for clients that offer it (browsers do), off by default as in the reference. [env: PER_MESSAGE_DEFLATE=1]")
    var perMessageDeflate: Bool = ProcessInfo.processInfo.environment["PER_MESSAGE_DEFLATE"] == "1"

    @Option(help: "The smallest WebSocket message compressed with --per-message-deflate, in bytes. [env: PER_MESSAGE_DEFLATE_THRESHOLD]")
    var perMessageDeflateThreshold: Int = ProcessInfo.processInfo.environment["PER_MESSAGE_DEFLATE_THRESHOLD"].flatMap(Int.init) ?? 1024

    @Option(help: "Milliseconds a slow client may stay behind before it is disconnected (it can recover). [env: SLOW_CONSUMER_TIMEOUT_MS]")
    var slowConsumerTimeoutMs: Int64 = ProcessInfo.processInfo.environment["SLOW_CONSUMER_TIMEOUT_MS"].flatMap(Int64.init) ?? 10_000

    @Option(help: "Milliseconds a connection may take to send a request head (slowloris and idle keep-alive guard). [env: REQUEST_TIMEOUT_MS]")
    var requestTimeoutMs: Int64 = ProcessInfo.processInfo.environment["REQUEST_TIMEOUT_MS"].flatMap(Int64.init) ?? 30_000

    @Option(help: "Most connections (Engine.IO sessions) at once; further ones get 503 and retry. 0: no limit. [env: MAX_CONNECTIONS]")
    var maxConnections: Int = ProcessInfo.processInfo.environment["MAX_CONNECTIONS"].flatMap(Int.init) ?? 0

    @Option(help: "Events a client may send per second; the rest are dropped. 0: no limit. [env: MAX_EVENTS_PER_SECOND]")
    var maxEventsPerSecond: Int = ProcessInfo.processInfo.environment["MAX_EVENTS_PER_SECOND"].flatMap(Int.init) ?? 0

    @Option(help: "A shared secret clients must send as auth.token (the page passes ?token=); empty leaves the chat open. [env: CHAT_TOKEN]")
    var chatToken: String = ProcessInfo.processInfo.environment["CHAT_TOKEN"] ?? ""

    @Option(help: "Directory of the embedded SQLite database. [env: DATA_DIR]")
    var dataDir: String = ProcessInfo.processInfo.environment["DATA_DIR"] ?? "data"

    @Option(help: "Directory holding mysql/ and sqlite/ migrations. [env: MIGRATIONS_DIR]")
    var migrationsDir: String = ProcessInfo.processInfo.environment["MIGRATIONS_DIR"] ?? defaultDirectory("migrations")

    @Option(help: "Directory of the web page. [env: WEB_DIR]")
    var webDir: String = ProcessInfo.processInfo.environment["WEB_DIR"] ?? defaultDirectory("web")

    @Option(help: "The official client bundle to serve at /socket.io/socket.io.min.js; without one, that path redirects to the CDN. [env: CLIENT_BUNDLE]")
    var clientBundle: String = ProcessInfo.processInfo.environment["CLIENT_BUNDLE"] ?? existing(defaultDirectory(".cache") + "/socket.io.min.js") ?? ""

    @Option(help: "Longest chat message, in UTF-16 code units. [env: MAX_MESSAGE_LENGTH]")
    var maxMessageLength: Int = ProcessInfo.processInfo.environment["MAX_MESSAGE_LENGTH"].flatMap(Int.init) ?? 10_000

    @Option(help: "Milliseconds a disconnected client's session is kept for recovery. [env: RECOVERY_MS]")
    var recoveryMs: Int64 = ProcessInfo.processInfo.environment["RECOVERY_MS"].flatMap(Int64.init) ?? 120_000

    @Option(help: "User name of the Socket.IO admin UI (admin.socket.io); with --admin-ui-password or --admin-ui-password-hash, the server serves the admin UI's protocol on /admin. [env: ADMIN_UI_USER]")
    var adminUiUser: String = ProcessInfo.processInfo.environment["ADMIN_UI_USER"] ?? ""

    @Option(help: "The admin UI's password. [env: ADMIN_UI_PASSWORD]")
    var adminUiPassword: String = ProcessInfo.processInfo.environment["ADMIN_UI_PASSWORD"] ?? ""

    @Option(help: "A bcrypt hash of the admin UI's password ($2b$...), instead of --admin-ui-password. [env: ADMIN_UI_PASSWORD_HASH]")
    var adminUiPasswordHash: String = ProcessInfo.processInfo.environment["ADMIN_UI_PASSWORD_HASH"] ?? ""

    @Option(help: "development: the admin UI sees every socket and event; production: counts only. [env: ADMIN_UI_MODE]")
    var adminUiMode: SocketIOAdminConfiguration.Mode = ProcessInfo.processInfo.environment["ADMIN_UI_MODE"].flatMap(SocketIOAdminConfiguration.Mode.init) ?? .development

    @Flag(inversion: .prefixedNo, help: "The admin UI only watches: no emit, join, leave or disconnect. [env: ADMIN_UI_READONLY=1]")
    var adminUiReadonly: Bool = ProcessInfo.processInfo.environment["ADMIN_UI_READONLY"] == "1"

    @Option(help: "The admin UI's origin, allowed (with credentials) for /admin only; empty for none. [env: ADMIN_UI_ORIGIN]")
    var adminUiOrigin: String = ProcessInfo.processInfo.environment["ADMIN_UI_ORIGIN"] ?? "https://admin.socket.io"

    /// The admin UI's configuration, nil unless its user and password are given.
    func adminUI() throws -> SocketIOAdminConfiguration? {
        guard !adminUiUser.isEmpty else { return nil }
        let password: SocketIOAdminCredentials.Password =
            adminUiPasswordHash.isEmpty ? .plain(adminUiPassword) : .bcrypt(adminUiPasswordHash)
        var configuration = SocketIOAdminConfiguration(credentials: try SocketIOAdminCredentials(username: adminUiUser, password: password))
        configuration.mode = adminUiMode
        configuration.readonly = adminUiReadonly
        configuration.uiOrigin = adminUiOrigin.isEmpty ? nil : adminUiOrigin
        return configuration
    }

    var engineIO: EngineIOConfiguration {
        var configuration = EngineIOConfiguration()
        configuration.path = path.hasSuffix("/") ? path : path + "/"
        configuration.pingInterval = .milliseconds(pingInterval)
        configuration.pingTimeout = .milliseconds(pingTimeout)
        configuration.maxHttpBufferSize = maxHttpBufferSize
        configuration.cors = CORSPolicy(parsing: corsOrigins, allowCredentials: corsCredentials)
        if !adminUiUser.isEmpty, !adminUiOrigin.isEmpty { configuration.cors.credentialedOrigins = [adminUiOrigin] }
        configuration.allowedHosts = AllowedHosts(parsing: allowedHosts)
        configuration.maxOutboundBytes = maxOutboundBytes
        configuration.requestHeadTimeout = .milliseconds(requestTimeoutMs)
        configuration.maxSessions = maxConnections
        configuration.slowConsumerTimeout = .milliseconds(slowConsumerTimeoutMs)
        configuration.maxPollingQueue = maxPollingQueue
        configuration.maxPacketsPerPoll = maxPacketsPerPoll
        configuration.httpCompression = httpCompression == .on ? HTTPCompression(threshold: httpCompressionThreshold) : nil
        configuration.perMessageDeflate = perMessageDeflate ? PerMessageDeflate(threshold: perMessageDeflateThreshold) : nil
        return configuration
    }

    func validate() throws {
        guard (1...65535).contains(port) || port == 0 else { throw ValidationError("--port must be 0...65535") }
        guard (1...1024).contains(eventLoops) else { throw ValidationError("--event-loops must be 1...1024") }
        guard pingInterval > 0, pingTimeout > 0 else { throw ValidationError("ping durations must be positive") }
        guard maxHttpBufferSize > 0 else { throw ValidationError("--max-http-buffer-size must be positive") }
        guard maxPollingQueue > 0 else { throw ValidationError("--max-polling-queue must be positive") }
        guard maxPacketsPerPoll > 0 else { throw ValidationError("--max-packets-per-poll must be positive") }
        guard httpCompressionThreshold >= 0 else { throw ValidationError("--http-compression-threshold must not be negative") }
        guard perMessageDeflateThreshold >= 0 else { throw ValidationError("--per-message-deflate-threshold must not be negative") }
        guard tlsCert.isEmpty == tlsKey.isEmpty else { throw ValidationError("--tls-cert and --tls-key go together") }
        let passwords = [adminUiPassword, adminUiPasswordHash].filter { !$0.isEmpty }.count
        if adminUiUser.isEmpty {
            guard passwords == 0 else { throw ValidationError("--admin-ui-password and --admin-ui-password-hash need --admin-ui-user") }
        } else {
            guard passwords == 1 else { throw ValidationError("--admin-ui-user needs one of --admin-ui-password and --admin-ui-password-hash") }
            do { _ = try adminUI() } catch { throw ValidationError("--admin-ui-password-hash: \(error)") }
        }
    }
}


/// An option that is on or off (`--http-compression on`), as the environment gives it too;
/// `1`/`0` and `true`/`false` are read as well.
enum Switch: String, ExpressibleByArgument, Sendable {
    case on
    case off

    init?(rawValue: String) {
        switch rawValue.lowercased() {
        case "on", "1", "true", "yes": self = .on
        case "off", "0", "false", "no": self = .off
        default: return nil
        }
    }
}

/// `name` in the working directory if it is there, else beside the package's sources (a
/// development build run from elsewhere).
func defaultDirectory(_ name: String) -> String {
    if access(name, F_OK) == 0 { return name }
    let sources = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
    return "/" + sources + "/" + name
}

func existing(_ path: String) -> String? {
    access(path, R_OK) == 0 ? path : nil
}

extension SocketIOAdminConfiguration.Mode: ExpressibleByArgument {}
