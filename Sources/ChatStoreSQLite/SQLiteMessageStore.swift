import CSQLite
import Chat
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The embedded default store: one SQLite database file in WAL mode.
///
/// SQLite serialises writers anyway, so one connection on one dedicated thread does all
/// the work; the event loops only await its results.
public final class SQLiteMessageStore: MessageStore {
    private let pool: NIOThreadPool
    private let connection: SQLiteConnection

    /// Opens (creating if needed) the database at `path`.
    public init(path: String) async throws {
        pool = NIOThreadPool(numberOfThreads: 1)
        pool.start()
        do {
            connection = try await pool.runIfActive { try SQLiteConnection(path: path) }
        } catch {
            try? await pool.shutdownGracefully()
            throw error
        }
    }

    public func migrate(_ migrations: [Migration]) async throws -> [Int] {
        try await pool.runIfActive { [connection] in try connection.migrate(migrations) }
    }

    public func insert(_ batch: [NewMessage]) async throws -> [InsertOutcome] {
        try await pool.runIfActive { [connection] in try connection.insert(batch) }
    }

    public func messages(after id: Int64, limit: Int) async throws -> [StoredMessage] {
        try await pool.runIfActive { [connection] in try connection.messages(after: id, limit: limit) }
    }

    public func messages(before id: Int64, limit: Int) async throws -> [StoredMessage] {
        try await pool.runIfActive { [connection] in try connection.messages(before: id, limit: limit) }
    }

    public func latestID() async throws -> Int64 {
        try await pool.runIfActive { [connection] in try connection.latestID() }
    }

    public func ping() async -> Bool {
        (try? await pool.runIfActive { [connection] in try connection.latestID() }) != nil
    }

    public func shutdown() async {
        try? await pool.runIfActive { [connection] in connection.close() }
        try? await pool.shutdownGracefully()
    }
}

public struct SQLiteError: Error, CustomStringConvertible {
    public let code: Int32
    public let message: String
    public var description: String { "SQLite error \(code): \(message)" }
}

/// One SQLite connection and its prepared statements.
final class SQLiteConnection: @unchecked Sendable {
    // @unchecked Sendable: used only from the store's single pool thread; the store hands
    // it to `NIOThreadPool.runIfActive`, which runs one closure at a time on that thread.

    private var db: OpaquePointer?
    private var insertStatement: OpaquePointer?
    private var selectStatement: OpaquePointer?
    private var selectBeforeStatement: OpaquePointer?
    private var offsetStatement: OpaquePointer?

    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    /// SQLITE_CONSTRAINT_UNIQUE, a macro Swift does not import.
    private static let constraintUnique = SQLITE_CONSTRAINT | (8 << 8)

    init(path: String) throws {
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK else {
            let error = SQLiteError(code: sqlite3_errcode(db), message: String(cString: sqlite3_errmsg(db)))
            sqlite3_close(db)
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, 5000)
        // WAL lets history reads run beside the writer; FULL makes a commit durable before
        // it is acknowledged, even against power loss.
        try execute("PRAGMA journal_mode=WAL")
        try execute("PRAGMA synchronous=FULL")
        try execute("PRAGMA foreign_keys=ON")
    }

    func close() {
        for statement in [insertStatement, selectStatement, selectBeforeStatement, offsetStatement] { sqlite3_finalize(statement) }
        insertStatement = nil
        selectStatement = nil
        selectBeforeStatement = nil
        offsetStatement = nil
        sqlite3_close(db)
        db = nil
    }

    private func error() -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)))
    }

    func execute(_ sql: String) throws {
        var message: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(db, sql, nil, nil, &message) == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? "unknown error"
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: text)
        }
    }

    private func prepare(_ sql: String) throws -> OpaquePointer? {
        var statement: OpaquePointer?
        guard sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil) == SQLITE_OK else { throw error() }
        return statement
    }

    // MARK: Migrations

    func migrate(_ migrations: [Migration]) throws -> [Int] {
        try execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')))")
        var applied: [Int] = []
        let select = try prepare("SELECT version FROM schema_migrations")
        defer { sqlite3_finalize(select) }
        while sqlite3_step(select) == SQLITE_ROW { applied.append(Int(sqlite3_column_int64(select, 0))) }
        var done: [Int] = []
        for migration in try Migration.pending(migrations, applied: applied) {
            try execute("BEGIN IMMEDIATE")
            do {
                for statement in migration.statements { try execute(statement) }
                let record = try prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
                defer { sqlite3_finalize(record) }
                sqlite3_bind_int64(record, 1, Int64(migration.version))
                bindText(record, 2, migration.name)
                guard sqlite3_step(record) == SQLITE_DONE else { throw error() }
                try execute("COMMIT")
            } catch {
                try? execute("ROLLBACK")
                throw error
            }
            done.append(migration.version)
        }
        return done
    }

    // MARK: Messages

    func insert(_ batch: [NewMessage]) throws -> [InsertOutcome] {
        if insertStatement == nil {
            insertStatement = try prepare(
                "INSERT INTO messages (client_offset, content, username) VALUES (?, ?, ?) RETURNING id, created_at"
            )
        }
        let statement = insertStatement
        try execute("BEGIN IMMEDIATE")
        var outcomes: [InsertOutcome] = []
        outcomes.reserveCapacity(batch.count)
        do {
            for message in batch {
                defer {
                    sqlite3_reset(statement)
                    sqlite3_clear_bindings(statement)
                }
                bindText(statement, 1, message.clientOffset)
                bindText(statement, 2, message.content)
                if let username = message.username {
                    bindText(statement, 3, username)
                } else {
                    sqlite3_bind_null(statement, 3)
                }
                switch sqlite3_step(statement) {
                case SQLITE_ROW:
                    let id = sqlite3_column_int64(statement, 0)
                    let createdAt = text(statement, 1) ?? ""
                    guard sqlite3_step(statement) == SQLITE_DONE else { throw error() }
                    outcomes.append(.inserted(StoredMessage(id: id, clientOffset: message.clientOffset, content: message.content, username: message.username, createdAt: createdAt)))
                case _ where sqlite3_extended_errcode(db) == Self.constraintUnique:
                    // Only this statement failed; the transaction goes on.
                    outcomes.append(.duplicate(id: try id(ofClientOffset: message.clientOffset)))
                default:
                    throw error()
                }
            }
            try execute("COMMIT")
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
        return outcomes
    }

    func messages(after id: Int64, limit: Int) throws -> [StoredMessage] {
        if selectStatement == nil {
            selectStatement = try prepare(
                "SELECT id, client_offset, content, username, created_at FROM messages WHERE id > ? ORDER BY id LIMIT ?"
            )
        }
        return try rows(of: selectStatement, id: id, limit: limit)
    }

    func messages(before id: Int64, limit: Int) throws -> [StoredMessage] {
        if selectBeforeStatement == nil {
            selectBeforeStatement = try prepare(
                "SELECT id, client_offset, content, username, created_at FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?"
            )
        }
        return try rows(of: selectBeforeStatement, id: id, limit: limit).reversed()
    }

    private func rows(of statement: OpaquePointer?, id: Int64, limit: Int) throws -> [StoredMessage] {
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        sqlite3_bind_int64(statement, 1, id)
        sqlite3_bind_int64(statement, 2, Int64(limit))
        var rows: [StoredMessage] = []
        while true {
            switch sqlite3_step(statement) {
            case SQLITE_ROW:
                rows.append(
                    StoredMessage(
                        id: sqlite3_column_int64(statement, 0), clientOffset: text(statement, 1) ?? "",
                        content: text(statement, 2) ?? "", username: text(statement, 3), createdAt: text(statement, 4) ?? ""
                    )
                )
            case SQLITE_DONE:
                return rows
            default:
                throw error()
            }
        }
    }

    /// The id of the stored message with this client offset (inside the insert's
    /// transaction, so a duplicate of the same batch is found too).
    private func id(ofClientOffset offset: String) throws -> Int64 {
        if offsetStatement == nil {
            offsetStatement = try prepare("SELECT id FROM messages WHERE client_offset = ?")
        }
        let statement = offsetStatement
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        bindText(statement, 1, offset)
        guard sqlite3_step(statement) == SQLITE_ROW else { throw error() }
        return sqlite3_column_int64(statement, 0)
    }

    func latestID() throws -> Int64 {
        let statement = try prepare("SELECT COALESCE(MAX(id), 0) FROM messages")
        defer { sqlite3_finalize(statement) }
        guard sqlite3_step(statement) == SQLITE_ROW else { throw error() }
        return sqlite3_column_int64(statement, 0)
    }

    /// Binds by byte count, so text with a NUL in it is stored whole.
    private func bindText(_ statement: OpaquePointer?, _ index: Int32, _ value: String) {
        var value = value
        value.withUTF8 { bytes in
            _ = sqlite3_bind_text(statement, index, UnsafeRawPointer(bytes.baseAddress!).assumingMemoryBound(to: CChar.self), Int32(bytes.count), Self.transient)
        }
    }

    private func text(_ statement: OpaquePointer?, _ column: Int32) -> String? {
        guard sqlite3_column_type(statement, column) != SQLITE_NULL, let pointer = sqlite3_column_text(statement, column) else { return nil }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }
}
