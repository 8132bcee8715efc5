import Chat
import Foundation
import Testing

@testable import ChatStoreMySQL
@testable import ChatStoreSQLite

/// The same behaviour asked of both stores: SQLite always, MariaDB when the test command
/// provides one (TEST_DATABASE_URL, a throwaway server), each test on a fresh database.
enum StoreKind: String, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case mysql

    var testDescription: String { rawValue }

    static var mysqlURL: String? { ProcessInfo.processInfo.environment["TEST_DATABASE_URL"] }

    static var available: [StoreKind] { mysqlURL == nil ? [.sqlite] : [.sqlite, .mysql] }

    var migrations: [Migration] {
        let root = #filePath.split(separator: "/").dropLast(3).joined(separator: "/")
        return try! Migration.load(from: "/" + root + "/migrations/" + rawValue)
    }

    /// A store on a database of its own.
    func makeStore() async throws -> any MessageStore {
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("chat-tests-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            return try await SQLiteMessageStore(path: directory.path + "/chat.sqlite3")
        case .mysql:
            let base = try MySQLConfiguration(url: Self.mysqlURL!)
            let name = "chat_t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").prefix(12).lowercased()
            try MySQLConnection(base).query("CREATE DATABASE \(name) CHARACTER SET utf8mb4")
            var configuration = base
            configuration.database = name
            return MySQLMessageStore(configuration: configuration)
        }
    }
}

@Suite struct MessageStoreTests {
    private func message(_ offset: String, _ content: String = "hello", user: String? = "ada") -> NewMessage {
        NewMessage(clientOffset: offset, content: content, username: user)
    }

    private func ids(_ outcomes: [InsertOutcome]) -> [Int64?] {
        outcomes.map { if case .inserted(let stored) = $0 { stored.id } else { nil } }
    }

    @Test(arguments: StoreKind.available)
    func migrationsAreAppliedOnce(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        #expect(try await store.migrate(kind.migrations) == [1])
        #expect(try await store.migrate(kind.migrations) == [])
        #expect(try await store.latestID() == 0)
    }

    @Test(arguments: StoreKind.available)
    func refusesASchemaNewerThanItKnows(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        let future = Migration(version: 2, name: "002_future", sql: "CREATE TABLE future_things (x INT);")
        #expect(try await store.migrate(kind.migrations + [future]) == [1, 2])
        await #expect(throws: MigrationError.databaseIsNewer(database: 2, known: 1)) {
            try await store.migrate(kind.migrations)
        }
    }

    @Test(arguments: StoreKind.available)
    func insertsAndDetectsDuplicatesPerMessage(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        _ = try await store.migrate(kind.migrations)
        let first = try await store.insert([message("tab-0"), message("tab-1"), message("tab-0"), message("TAB-0")])
        // The repeat in the same batch is a duplicate; offsets differing in case are not.
        // (MySQL spends an id on the duplicate, SQLite does not: only the order is promised.)
        #expect(ids(first).map { $0 == nil } == [false, false, true, false])
        // A duplicate names the stored message's id, in the same batch or a later one.
        #expect(first[2] == .duplicate(id: ids(first)[0]!))
        let retry = try await store.insert([message("tab-1"), message("tab-2", "second")])
        #expect(retry[0] == .duplicate(id: ids(first)[1]!))
        let single = try await store.insert([message("tab-2")])  // a batch of one takes another path
        #expect(single == [.duplicate(id: ids(retry)[1]!)])
        let all = (ids(first) + ids(retry)).compactMap { $0 }
        #expect(all == all.sorted() && Set(all).count == all.count)
        let stored = try await store.messages(after: 0, limit: 10)
        #expect(stored.map(\.clientOffset) == ["tab-0", "tab-1", "TAB-0", "tab-2"])
        #expect(stored.allSatisfy { $0.createdAt.hasSuffix("Z") })
        // What an insert returns is what is stored: the broadcast carries the same time.
        let inserted = (first + retry).compactMap { if case .inserted(let message) = $0 { message } else { nil } }
        #expect(inserted.map(\.createdAt) == stored.map(\.createdAt))
        let one = try await store.insert([message("tab-3")])
        guard case .inserted(let alone)? = one.first else { Issue.record("not inserted"); return }
        #expect(try await store.messages(after: alone.id - 1, limit: 1).first?.createdAt == alone.createdAt)
    }

    @Test(arguments: StoreKind.available)
    func readsHistoryBackwardsAPageAtATime(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        _ = try await store.migrate(kind.migrations)
        #expect(try await store.messages(before: .max, limit: 10).isEmpty)
        _ = try await store.insert((1...25).map { message("m-\($0)", "message \($0)") })
        #expect(try await store.messages(before: .max, limit: 10).map(\.id) == Array(16...25))
        #expect(try await store.messages(before: 16, limit: 10).map(\.id) == Array(6...15))
        #expect(try await store.messages(before: 6, limit: 10).map(\.id) == Array(1...5))
        #expect(try await store.messages(before: 1, limit: 10).isEmpty)
        #expect(try await store.messages(before: .max, limit: 1).first?.content == "message 25")
    }

    @Test(arguments: StoreKind.available)
    func replaysAfterAnOffsetInPages(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        _ = try await store.migrate(kind.migrations)
        _ = try await store.insert((1...25).map { message("m-\($0)", "message \($0)") })
        #expect(try await store.latestID() == 25)
        #expect(try await store.messages(after: 10, limit: 10).map(\.id) == Array(11...20))
        #expect(try await store.messages(after: 20, limit: 10).map(\.id) == Array(21...25))
        #expect(try await store.messages(after: 25, limit: 10).isEmpty)
        #expect(try await store.messages(after: 0, limit: 1).first?.content == "message 1")
    }

    @Test(arguments: StoreKind.available)
    func keepsTextAsGiven(kind: StoreKind) async throws {
        let store = try await kind.makeStore()
        defer { Task { await store.shutdown() } }
        _ = try await store.migrate(kind.migrations)
        let content = "<script>alert(1)</script> 'quotes' \"double\" \\ émoji 😀 \u{0}nul"
        _ = try await store.insert([message("x", content, user: "Zoë 🐙"), message("y", "no user", user: nil)])
        let stored = try await store.messages(after: 0, limit: 10)
        #expect(stored[0].content == content)
        #expect(stored[0].username == "Zoë 🐙")
        #expect(stored[1].username == nil)
        #expect(await store.ping())
    }
}
