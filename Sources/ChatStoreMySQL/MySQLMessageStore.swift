import CMariaDB
import Chat
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The MySQL/MariaDB store, through MariaDB Connector/C.
///
/// Connector/C blocks, so every call runs on a dedicated thread pool with as many threads
/// as the pool has connections: a thread always finds a connection to lease. A connection
/// that fails is dropped and the next call opens a new one, so the store carries on once
/// the database is back.
public final class MySQLMessageStore: MessageStore {
    private let configuration: MySQLConfiguration
    private let threads: NIOThreadPool
    private let idle = NIOLockedValueBox<[MySQLConnectionBox]>([])

    public init(configuration: MySQLConfiguration) {
        self.configuration = configuration
        threads = NIOThreadPool(numberOfThreads: max(configuration.poolSize, 1))
        threads.start()
        mysql_library_init_once()
    }

    /// Runs `body` with a leased connection on a pool thread.
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (MySQLConnection) throws -> T) async throws -> T {
        try await threads.runIfActive { [self] in
            let box = try idle.withLockedValue { $0.popLast() } ?? MySQLConnectionBox(MySQLConnection(configuration))
            do {
                let result = try body(box.connection)
                idle.withLockedValue { $0.append(box) }
                return result
            } catch let error as MySQLError where error.code == MySQLConnection.duplicateEntry {
                idle.withLockedValue { $0.append(box) }
                throw error
            } catch {
                // Any other failure may have left the connection unusable: drop it.
                throw error
            }
        }
    }

    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        try await withConnection { connection in
            try connection.query(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INT NOT NULL PRIMARY KEY, name VARCHAR(255) NOT NULL, "
                    + "applied_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3)) ENGINE = InnoDB"
            )
            // One server at a time migrates.
            _ = try connection.integers("SELECT GET_LOCK('chat_schema_migrations', 60)")
            defer { _ = try? connection.integers("SELECT RELEASE_LOCK('chat_schema_migrations')") }
            let applied = try connection.integers("SELECT version FROM schema_migrations").map { Int($0) }
            var done: [Int] = []
            for migration in try Migration.pending(migrations, applied: applied) {
                // MySQL commits DDL implicitly; each statement is idempotent on its own file.
                for statement in migration.statements { try connection.query(statement) }
                try connection.recordMigration(migration)
                done.append(migration.version)
            }
            return done
        }
    }

    public func insert(_ batch: [NewMessage]) async throws -> [InsertOutcome] {
        try await withConnection { try $0.insert(batch) }
    }

    /// Under a named lock (`GET_LOCK`) held across the read of the previous id and the
    /// commit, so that the servers sharing the database commit one batch at a time. MySQL
    /// releases it if the holder's connection dies.
    public func insertInCommitOrder(_ batch: [NewMessage]) async throws -> (outcomes: [InsertOutcome], previousID: Int64) {
        try await withConnection { connection in
            guard try connection.integers("SELECT GET_LOCK('chat_commit_order', 10)").first == 1 else {
                throw MySQLError.server(code: 0, message: "the commit-order lock was not granted within 10 s")
            }
            defer { _ = try? connection.integers("SELECT RELEASE_LOCK('chat_commit_order')") }
            let previousID = try connection.integers("SELECT COALESCE(MAX(id), 0) FROM messages").first ?? 0
            return (try connection.insert(batch), previousID)
        }
    }

    public func messages(after id: Int64, limit: Int) async throws -> [StoredMessage] {
        try await withConnection { try $0.messages(after: id, limit: limit) }
    }

    public func messages(before id: Int64, limit: Int) async throws -> [StoredMessage] {
        try await withConnection { try $0.messages(before: id, limit: limit) }
    }

    public func latestID() async throws -> Int64 {
        try await withConnection { try $0.integers("SELECT COALESCE(MAX(id), 0) FROM messages").first ?? 0 }
    }

    public func ping() async -> Bool {
        (try? await withConnection { connection in
            guard connection.ping() else { throw MySQLError.server(code: 2006, message: "ping failed") }
            return true
        }) ?? false
    }

    public func shutdown() async {
        idle.withLockedValue { $0.removeAll() }
        try? await threads.shutdownGracefully()
    }
}

/// Moves a connection between pool threads. @unchecked Sendable: a connection is used by
/// one thread at a time, handed over through the `idle` lock.
final class MySQLConnectionBox: @unchecked Sendable {
    let connection: MySQLConnection
    init(_ connection: MySQLConnection) { self.connection = connection }
}

private let libraryInit: Void = {
    mysql_server_init(0, nil, nil)
}()

/// Connector/C's global initialisation is not thread-safe; run it once before any thread
/// opens a connection.
func mysql_library_init_once() {
    _ = libraryInit
}
