import ArgumentParser
import Chat
import ChatStoreMySQL
import ChatStoreSQLite
import EngineIO
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import Prometheus
import SocketIO

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "The Socket.IO chat server: the page on /, Socket.IO on /socket.io/, history on /messages."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        let logger = Logger(label: "chat-server")
        let metrics = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: metrics))
        let store = try await openStore(logger: logger)
        let latestID = try await store.latestID()

        var configuration = SocketIOConfiguration()
        configuration.engineIO = options.engineIO
        configuration.maxEventsPerSecond = options.maxEventsPerSecond
        var recovery = ConnectionStateRecovery()
        recovery.maxDisconnectionDuration = .milliseconds(options.recoveryMs)
        configuration.connectionStateRecovery = recovery

        let token = options.chatToken.isEmpty ? nil : options.chatToken
        let responder = ChatHTTPResponder(
            webDirectory: options.webDir, clientBundlePath: options.clientBundle.isEmpty ? nil : options.clientBundle, store: store,
            accessToken: token, metrics: metrics
        )
        let io = SocketIOServer(configuration: configuration, fallback: responder)
        var chatConfiguration = ChatConfiguration()
        chatConfiguration.maxMessageLength = options.maxMessageLength
        chatConfiguration.accessToken = token
        let chat = ChatService(io: io, store: store, latestID: latestID, configuration: chatConfiguration, logger: logger)

        let channel = try await io.bind(host: options.host, port: options.port, group: MultiThreadedEventLoopGroup.singleton)
        logger.info("chat-server listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")", "latest_id": "\(latestID)"])
        print("chat-server listening on \(channel.localAddress.map { "\($0)" } ?? "?")")

        let signal = await ShutdownSignal.wait()
        // Graceful shutdown: stop accepting; let queued inserts commit, broadcast and be
        // acknowledged; then close every session with "server shutting down", so clients
        // reconnect (and, to the next server, replay from their serverOffset).
        logger.info("shutting down", metadata: ["signal": "\(signal)"])
        try? await channel.close()
        await chat.writer.waitUntilIdle(timeout: .seconds(10))
        io.engine.closeAllSessions()
        try? await Task.sleep(for: .milliseconds(200))  // let the close frames leave
        await store.shutdown()
        logger.info("stopped")
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
