import ArgumentParser
import Chat
import ChatStoreMySQL
import ChatStoreSQLite
import EngineIO
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import Metrics
import NIOCore
import NIOPosix
import NIOSSL
import Prometheus
import Redis
import ServiceLifecycle
import SocketIO
import SocketIOAdmin
import SocketIOHummingbird
import SocketIORedis

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "The Socket.IO chat server: the page on /, Socket.IO on /socket.io/, history on /messages."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        // Before anything touches the shared event-loop group, which every part of the server uses.
        NIOSingletons.groupLoopCountSuggestion = options.eventLoops
        let logger = Logger(label: "chat-server")
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        let tls = try makeTLSConfiguration()  // before the store, so a bad certificate fails fast
        if tls != nil && options.framework == .nio {
            throw ValidationError("--framework nio serves Socket.IO alone, in plain HTTP: TLS needs the Hummingbird app")
        }
        let store = try await openStore(logger: logger)
        let latestID = try await store.latestID()

        var configuration = SocketIOConfiguration()
        configuration.engineIO = options.engineIO
        configuration.maxEventsPerSecond = options.maxEventsPerSecond
        var recovery = ConnectionStateRecovery()
        recovery.maxDisconnectionDuration = .milliseconds(options.recoveryMs)
        configuration.connectionStateRecovery = recovery

        let cluster = try makeCluster()
        if let cluster {
            configuration.adapter = cluster.makeAdapter
            // Any node serves any session's requests: a balancer needs no sticky sessions.
            configuration.engineIO.cluster = cluster
        }

        let token = options.chatToken.isEmpty ? nil : options.chatToken
        let io = SocketIOServer(configuration: configuration)
        if let admin = try options.adminUI() {
            // Before the chat's handlers and the listener: every socket is watched from the first.
            try SocketIOAdmin(server: io, configuration: admin, logger: logger).start()
            logger.info("serving the admin UI", metadata: ["namespace": "\(admin.namespace)", "mode": "\(admin.mode.rawValue)"])
        }
        var chatConfiguration = ChatConfiguration()
        chatConfiguration.maxMessageLength = options.maxMessageLength
        chatConfiguration.accessToken = token
        chatConfiguration.clustered = cluster != nil
        if let cluster {
            logger.info("joining the cluster", metadata: ["redis": "\(options.redisURL)", "node": "\(cluster.nodeID)"])
        }
        let chat = ChatService(io: io, store: store, latestID: latestID, configuration: chatConfiguration, logger: logger)

        // Shut down in reverse order: the chat drains (stops new sessions, commits, broadcasts
        // and acknowledges what it holds), Socket.IO closes every session with "server shutting
        // down" so clients reconnect, the HTTP server stops, the node leaves the cluster, and
        // only then the database closes.
        var services: [any Service] = [MessageStoreService(store: store)]
        if let cluster { services.append(cluster) }
        switch options.framework {
        case .hummingbird:
            let routes = ChatRoutes(
                io: io, store: store, accessToken: token, metrics: metrics, webDirectory: options.webDir,
                clientBundle: options.clientBundle.isEmpty ? nil : options.clientBundle, allowedHosts: options.engineIO.allowedHosts
            )
            let router = routes.router()
            var http = HTTP1Channel.Configuration()
            // Idle keep-alive connections close after the request timeout, as on the engine's own listener.
            http.idleTimeout = .milliseconds(options.requestTimeoutMs)
            var server = HTTPServerBuilder.http1SocketIO(io, router: router, configuration: http)
            if let tls { server = try .tls(server, tlsConfiguration: tls) }
            let address = "\(options.host):\(options.port)"
            let app = Application(
                router: router,
                server: server,
                configuration: .init(address: .hostname(options.host, port: options.port), serverName: "chat-server", backlog: 1024),
                onServerRunning: { channel in
                    let bound = channel.localAddress.map { "\($0)" } ?? address
                    logger.info("chat-server listening", metadata: ["address": "\(bound)", "tls": "\(tls != nil)"])
                    print("chat-server listening on \(bound)\(tls != nil ? " (TLS)" : "")")
                },
                logger: logger
            )
            services.append(app)
        case .nio: services.append(EngineListenerService(engine: io.engine, host: options.host, port: options.port, logger: logger))
        }
        services += [io, chat]
        var group = ServiceGroupConfiguration(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)
        // Past this, the drain is cancelled; past the second, the process ends regardless.
        group.maximumGracefulShutdownDuration = .seconds(15)
        group.maximumCancellationDuration = .seconds(5)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            throw ListenError(error, host: options.host, port: options.port) ?? error
        }
        logger.info("stopped")
    }

    /// The Redis cluster for `--redis-url`, or nil for a server on its own. A cluster
    /// shares its messages through MySQL: the embedded SQLite store is one process's.
    private func makeCluster() throws -> RedisCluster? {
        guard !options.redisURL.isEmpty else { return nil }
        guard let endpoint = RedisEndpoint(url: options.redisURL) else {
            throw ValidationError(
                "--redis-url must be redis://host[:port] or redis-sentinel://host[:port][,host[:port]...]/primary-name, got \(options.redisURL)")
        }
        guard !options.databaseURL.isEmpty else {
            throw ValidationError("a cluster (--redis-url) needs a shared database: set --database-url (MySQL)")
        }
        var settings = RedisCluster.Configuration(endpoint: endpoint)
        settings.keyPrefix = options.redisKeyPrefix
        return RedisCluster(configuration: settings, group: MultiThreadedEventLoopGroup.singleton)
    }

    /// The TLS configuration for `--tls-cert`/`--tls-key`, or nil to serve plain HTTP. The
    /// files are read (and a bad one refused) before anything starts.
    private func makeTLSConfiguration() throws -> TLSConfiguration? {
        guard !options.tlsCert.isEmpty else { return nil }
        let chain = try NIOSSLCertificate.fromPEMFile(options.tlsCert).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: options.tlsKey, format: .pem)
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        _ = try NIOSSLContext(configuration: tls)
        return tls
    }

    /// Opens the store named by DATABASE_URL (SQLite under DATA_DIR when unset) and applies
    /// pending migrations, waiting up to a minute for a database that is still starting.
    private func openStore(logger: Logger) async throws -> any MessageStore {
        let store: any MessageStore
        let dialect: String
        if !options.databaseURL.isEmpty {
            let url = options.databaseURL
            store = MySQLMessageStore(configuration: try MySQLConfiguration(url: url))
            dialect = "mysql"
        } else {
            try FileManager.default.createDirectory(atPath: options.dataDir, withIntermediateDirectories: true)
            store = try await SQLiteMessageStore(path: options.dataDir + "/chat.sqlite3")
            dialect = "sqlite"
        }
        let migrations = try Migration.load(from: options.migrationsDir + "/" + dialect)
        var attempt = 0
        while true {
            do {
                let applied = try await store.migrate(migrations)
                logger.info("schema ready", metadata: ["store": "\(dialect)", "applied_now": "\(applied)"])
                return store
            } catch let error as MigrationError {
                throw error
            } catch {
                attempt += 1
                guard attempt < 60 else { throw error }
                logger.warning("database not ready, retrying", metadata: ["error": "\(error)"])
                try await Task.sleep(for: .seconds(1))
            }
        }
    }
}
