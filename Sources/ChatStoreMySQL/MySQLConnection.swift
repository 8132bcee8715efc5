import CMariaDB
import Chat

/// One MariaDB Connector/C connection with its prepared statements. Every call blocks:
/// only the store's thread pool calls it, one thread at a time.
typealias Statement = UnsafeMutablePointer<MYSQL_STMT>

final class MySQLConnection {
    private let mysql: UnsafeMutablePointer<MYSQL>
    private var insert: Statement?
    private var select: Statement?
    private var selectBefore: Statement?
    /// Statements whose text depends on a batch's size, by that text.
    private var sized: [String: Statement] = [:]

    static let duplicateEntry: UInt32 = 1062  // ER_DUP_ENTRY

    init(_ configuration: MySQLConfiguration) throws {
        guard let mysql = mysql_init(nil) else { throw MySQLError.server(code: 0, message: "out of memory") }
        self.mysql = mysql
        withUnsafePointer(to: configuration.timeout) { timeout in
            mysql_options(mysql, MYSQL_OPT_CONNECT_TIMEOUT, timeout)
            mysql_options(mysql, MYSQL_OPT_READ_TIMEOUT, timeout)
            mysql_options(mysql, MYSQL_OPT_WRITE_TIMEOUT, timeout)
        }
        mysql_options(mysql, MYSQL_SET_CHARSET_NAME, "utf8mb4")
        // On failure deinit closes the handle: every stored property is set by now.
        guard mysql_real_connect(mysql, configuration.host, configuration.user, configuration.password, configuration.database, configuration.port, nil, 0) != nil else {
            throw Self.error(mysql)
        }
        try query("SET time_zone = '+00:00'")
        try query("SET SESSION sql_mode = 'STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION'")
    }

    deinit {
        if let insert { mysql_stmt_close(insert) }
        if let select { mysql_stmt_close(select) }
        if let selectBefore { mysql_stmt_close(selectBefore) }
        for statement in sized.values { mysql_stmt_close(statement) }
        mysql_close(mysql)
    }

    /// A prepared statement kept for reuse; the cache is bounded.
    private func prepared(_ sql: String) throws -> Statement {
        if let statement = sized[sql] { return statement }
        if sized.count >= 96 {
            for statement in sized.values { mysql_stmt_close(statement) }
            sized.removeAll()
        }
        let statement = try prepare(sql)
        sized[sql] = statement
        return statement
    }

    private static func error(_ mysql: UnsafeMutablePointer<MYSQL>) -> MySQLError {
        .server(code: mysql_errno(mysql), message: String(cString: mysql_error(mysql)))
    }

    private static func error(statement: Statement) -> MySQLError {
        .server(code: mysql_stmt_errno(statement), message: String(cString: mysql_stmt_error(statement)))
    }

    func query(_ sql: String) throws {
        guard mysql_real_query(mysql, sql, UInt(sql.utf8.count)) == 0 else { throw Self.error(mysql) }
        // Drain any result so the connection is ready for the next command.
        if let result = mysql_store_result(mysql) { mysql_free_result(result) }
    }

    func ping() -> Bool {
        mysql_ping(mysql) == 0
    }

    private func prepare(_ sql: String) throws -> Statement {
        guard let statement = mysql_stmt_init(mysql) else { throw Self.error(mysql) }
        guard mysql_stmt_prepare(statement, sql, UInt(sql.utf8.count)) == 0 else {
            let error = Self.error(statement: statement)
            mysql_stmt_close(statement)
            throw error
        }
        return statement
    }

    // MARK: Queries

    /// The integer column of each row of a parameterless query.
    func integers(_ sql: String) throws -> [Int64] {
        guard mysql_real_query(mysql, sql, UInt(sql.utf8.count)) == 0 else { throw Self.error(mysql) }
        guard let result = mysql_store_result(mysql) else { throw Self.error(mysql) }
        defer { mysql_free_result(result) }
        var values: [Int64] = []
        while let row = mysql_fetch_row(result) {
            values.append(row[0].flatMap { Int64(String(cString: $0)) } ?? 0)
        }
        return values
    }

    func recordMigration(_ migration: Migration) throws {
        let statement = try prepare("INSERT INTO schema_migrations (version, name) VALUES (?, ?)")
        defer { mysql_stmt_close(statement) }
        try withParameters([.int(Int64(migration.version)), .text(migration.name)]) { binds in
            guard mysql_stmt_bind_param(statement, binds) == 0, mysql_stmt_execute(statement) == 0 else {
                throw Self.error(statement: statement)
            }
        }
    }

    private struct ConcurrentDuplicate: Error {}

    /// Inserts a batch in one transaction with three round trips whatever its size: which
    /// client offsets exist already, one multi-row INSERT of the new ones, and their ids.
    /// Should another writer insert one of them in between (a second server), the batch
    /// is redone a row at a time.
    func insert(_ batch: [NewMessage]) throws -> [InsertOutcome] {
        guard batch.count > 1 else { return try insertRowByRow(batch) }
        try query("START TRANSACTION")
        do {
            let existing = try rows(withOffsets: batch.map(\.clientOffset))
            var seen = Set(existing.keys)
            var fresh: [Int] = []  // indexes in `batch` of the messages to store
            for (index, message) in batch.enumerated() where seen.insert(message.clientOffset).inserted {
                fresh.append(index)
            }
            var inserted: [String: StoredRow] = [:]
            if !fresh.isEmpty {
                try insertRows(fresh.map { batch[$0] })
                inserted = try rows(withOffsets: fresh.map { batch[$0].clientOffset })
            }
            try query("COMMIT")
            let freshSet = Set(fresh)
            return batch.indices.map { index in
                let message = batch[index]
                guard freshSet.contains(index), let row = inserted[message.clientOffset] else {
                    return .duplicate(id: existing[message.clientOffset]?.id ?? inserted[message.clientOffset]?.id ?? 0)
                }
                return .inserted(StoredMessage(id: row.id, clientOffset: message.clientOffset, content: message.content, username: message.username, createdAt: row.createdAt))
            }
        } catch is ConcurrentDuplicate {
            try? query("ROLLBACK")
            return try insertRowByRow(batch)
        } catch {
            try? query("ROLLBACK")
            throw error
        }
    }

    private func placeholders(_ count: Int, _ group: String = "?") -> String {
        Array(repeating: group, count: count).joined(separator: ",")
    }

    /// A stored message's id and creation time, as the broadcast and the ack need them.
    struct StoredRow {
        var id: Int64
        var createdAt: String
    }

    /// The stored messages with these client offsets, by offset.
    private func rows(withOffsets offsets: [String]) throws -> [String: StoredRow] {
        let unique = Array(Set(offsets))
        let statement = try prepared(
            "SELECT id, client_offset, \(Self.createdAtColumn) FROM messages WHERE client_offset IN (\(placeholders(unique.count)))"
        )
        try withParameters(unique.map { .text($0) }) { binds in
            guard mysql_stmt_bind_param(statement, binds) == 0, mysql_stmt_execute(statement) == 0 else {
                throw Self.error(statement: statement)
            }
        }
        defer { mysql_stmt_free_result(statement) }
        let row = ResultRow(stringColumns: 2)
        guard mysql_stmt_bind_result(statement, row.binds) == 0, mysql_stmt_store_result(statement) == 0 else {
            throw Self.error(statement: statement)
        }
        var rows: [String: StoredRow] = [:]
        while true {
            let status = mysql_stmt_fetch(statement)
            if status == 100 { break }
            guard status == 0 || status == 101 else { throw Self.error(statement: statement) }
            if let offset = try row.string(column: 1, statement: statement) {
                rows[offset] = StoredRow(id: row.id, createdAt: try row.string(column: 2, statement: statement) ?? "")
            }
        }
        return rows
    }

    /// `created_at` as ISO 8601 in UTC (the session's time zone is UTC).
    private static let createdAtColumn = "DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%s.%fZ')"

    private func insertRows(_ messages: [NewMessage]) throws {
        let statement = try prepared("INSERT INTO messages (client_offset, content, username) VALUES \(placeholders(messages.count, "(?,?,?)"))")
        var parameters: [Parameter] = []
        parameters.reserveCapacity(messages.count * 3)
        for message in messages {
            parameters += [.text(message.clientOffset), .text(message.content), .optionalText(message.username)]
        }
        try withParameters(parameters) { binds in
            guard mysql_stmt_bind_param(statement, binds) == 0 else { throw Self.error(statement: statement) }
            if mysql_stmt_execute(statement) != 0 {
                if mysql_stmt_errno(statement) == Self.duplicateEntry { throw ConcurrentDuplicate() }
                throw Self.error(statement: statement)
            }
        }
    }

    /// Inserts each message with its own statement in one transaction; a duplicate client
    /// offset fails only its own statement (InnoDB rolls back the statement, not the
    /// transaction).
    func insertRowByRow(_ batch: [NewMessage]) throws -> [InsertOutcome] {
        if insert == nil {
            insert = try prepare("INSERT INTO messages (client_offset, content, username) VALUES (?, ?, ?)")
        }
        let statement = insert!
        try query("START TRANSACTION")
        do {
            var stored: [Bool] = []
            stored.reserveCapacity(batch.count)
            for message in batch {
                let failed = try withParameters([.text(message.clientOffset), .text(message.content), .optionalText(message.username)]) { binds in
                    guard mysql_stmt_bind_param(statement, binds) == 0 else { throw Self.error(statement: statement) }
                    return mysql_stmt_execute(statement) != 0
                }
                if failed {
                    guard mysql_stmt_errno(statement) == Self.duplicateEntry else { throw Self.error(statement: statement) }
                }
                stored.append(!failed)
            }
            // The ids and creation times, of the new rows and of those retried alike.
            let rows = try rows(withOffsets: batch.map(\.clientOffset))
            try query("COMMIT")
            return zip(batch, stored).map { message, stored in
                let row = rows[message.clientOffset] ?? StoredRow(id: 0, createdAt: "")
                guard stored else { return .duplicate(id: row.id) }
                return .inserted(StoredMessage(id: row.id, clientOffset: message.clientOffset, content: message.content, username: message.username, createdAt: row.createdAt))
            }
        } catch {
            try? query("ROLLBACK")
            throw error
        }
    }

    func messages(after id: Int64, limit: Int) throws -> [StoredMessage] {
        if select == nil {
            select = try prepare(
                "SELECT id, client_offset, content, username, \(Self.createdAtColumn) FROM messages WHERE id > ? ORDER BY id LIMIT ?"
            )
        }
        return try messages(of: select!, id: id, limit: limit)
    }

    func messages(before id: Int64, limit: Int) throws -> [StoredMessage] {
        if selectBefore == nil {
            selectBefore = try prepare(
                "SELECT id, client_offset, content, username, \(Self.createdAtColumn) FROM messages WHERE id < ? ORDER BY id DESC LIMIT ?"
            )
        }
        return try messages(of: selectBefore!, id: id, limit: limit).reversed()
    }

    private func messages(of statement: Statement, id: Int64, limit: Int) throws -> [StoredMessage] {
        try withParameters([.int(id), .int(Int64(limit))]) { binds in
            guard mysql_stmt_bind_param(statement, binds) == 0, mysql_stmt_execute(statement) == 0 else {
                throw Self.error(statement: statement)
            }
        }
        defer { mysql_stmt_free_result(statement) }
        let row = ResultRow(stringColumns: 4)
        guard mysql_stmt_bind_result(statement, row.binds) == 0, mysql_stmt_store_result(statement) == 0 else {
            throw Self.error(statement: statement)
        }
        var messages: [StoredMessage] = []
        while true {
            let status = mysql_stmt_fetch(statement)
            if status == 100 { break }  // MYSQL_NO_DATA
            guard status == 0 || status == 101 else { throw Self.error(statement: statement) }  // 101: truncated strings, fetched below
            var strings: [String?] = []
            for column in 1...4 {
                strings.append(try row.string(column: column, statement: statement))
            }
            messages.append(StoredMessage(id: row.id, clientOffset: strings[0] ?? "", content: strings[1] ?? "", username: strings[2], createdAt: strings[3] ?? ""))
        }
        return messages
    }

    // MARK: Binding

    enum Parameter {
        case int(Int64)
        case text(String)
        case optionalText(String?)
    }

    /// Binds parameters for the duration of `body`; values are copied into C memory that
    /// lives until `body` returns.
    private func withParameters<T>(_ parameters: [Parameter], _ body: (UnsafeMutablePointer<MYSQL_BIND>) throws -> T) throws -> T {
        let binds = UnsafeMutablePointer<MYSQL_BIND>.allocate(capacity: parameters.count)
        binds.initialize(repeating: MYSQL_BIND(), count: parameters.count)
        var allocations: [UnsafeMutableRawPointer] = []
        defer {
            for allocation in allocations { allocation.deallocate() }
            binds.deinitialize(count: parameters.count)
            binds.deallocate()
        }
        for (index, parameter) in parameters.enumerated() {
            switch parameter {
            case .int(let value):
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: 8, alignment: 8)
                buffer.storeBytes(of: value, as: Int64.self)
                allocations.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_LONGLONG
                binds[index].buffer = buffer
            case .text(let text), .optionalText(.some(let text)):
                let bytes = Array(text.utf8)
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 1)
                bytes.withUnsafeBytes { buffer.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
                allocations.append(buffer)
                binds[index].buffer_type = MYSQL_TYPE_STRING
                binds[index].buffer = buffer
                binds[index].buffer_length = UInt(bytes.count)
            case .optionalText(.none):
                binds[index].buffer_type = MYSQL_TYPE_NULL
            }
        }
        return try body(binds)
    }
}

/// Result buffers for one row: a BIGINT id, then string columns fetched at their real
/// length with mysql_stmt_fetch_column.
private final class ResultRow {
    let binds: UnsafeMutablePointer<MYSQL_BIND>
    private let columns: Int
    private let idStorage = UnsafeMutablePointer<Int64>.allocate(capacity: 1)
    private let lengths: UnsafeMutablePointer<UInt>
    private let nulls: UnsafeMutablePointer<my_bool>

    var id: Int64 { idStorage.pointee }

    init(stringColumns: Int) {
        columns = stringColumns + 1
        binds = .allocate(capacity: columns)
        binds.initialize(repeating: MYSQL_BIND(), count: columns)
        lengths = .allocate(capacity: columns)
        lengths.initialize(repeating: 0, count: columns)
        nulls = .allocate(capacity: columns)
        nulls.initialize(repeating: 0, count: columns)
        idStorage.initialize(to: 0)
        binds[0].buffer_type = MYSQL_TYPE_LONGLONG
        binds[0].buffer = UnsafeMutableRawPointer(idStorage)
        binds[0].is_null = nulls
        for column in 1..<columns {
            binds[column].buffer_type = MYSQL_TYPE_STRING
            binds[column].buffer = nil
            binds[column].buffer_length = 0  // fetch reports the real length; the bytes come from fetch_column
            binds[column].length = lengths + column
            binds[column].is_null = nulls + column
        }
    }

    deinit {
        binds.deinitialize(count: columns)
        binds.deallocate()
        lengths.deallocate()
        nulls.deallocate()
        idStorage.deallocate()
    }

    func string(column: Int, statement: Statement) throws -> String? {
        if nulls[column] != 0 { return nil }
        let length = Int(lengths[column])
        if length == 0 { return "" }
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: length, alignment: 1)
        defer { buffer.deallocate() }
        var bind = MYSQL_BIND()
        bind.buffer_type = MYSQL_TYPE_STRING
        bind.buffer = buffer
        bind.buffer_length = UInt(length)
        guard mysql_stmt_fetch_column(statement, &bind, UInt32(column), 0) == 0 else {
            throw MySQLError.server(code: mysql_stmt_errno(statement), message: String(cString: mysql_stmt_error(statement)))
        }
        return String(decoding: UnsafeRawBufferPointer(start: buffer, count: length), as: UTF8.self)
    }
}
