import Testing
import SocketIO

@testable import Chat

@Suite struct ChatLogicTests {
    @Test func usernamesAreTrimmedAndBounded() throws {
        let configuration = ChatConfiguration()
        #expect(try ChatService.username(from: ["username": "  ada  "], configuration: configuration) == "ada")
        #expect(try ChatService.username(from: [:], configuration: configuration) == nil)
        #expect(try ChatService.username(from: ["username": .string(String(repeating: "é", count: 64))], configuration: configuration)?.count == 64)
        #expect(throws: (any Error).self) { try ChatService.username(from: ["username": "   "], configuration: configuration) }
        #expect(throws: (any Error).self) { try ChatService.username(from: ["username": .string(String(repeating: "x", count: 65))], configuration: configuration) }
        #expect(throws: (any Error).self) { try ChatService.username(from: ["username": 5], configuration: configuration) }
    }

    @Test func serverOffsetsAcceptNumbersAndNumericStrings() {
        #expect(ChatService.serverOffset(from: ["serverOffset": 42]) == 42)
        #expect(ChatService.serverOffset(from: ["serverOffset": "42"]) == 42)
        #expect(ChatService.serverOffset(from: [:]) == 0)
        #expect(ChatService.serverOffset(from: ["serverOffset": -3]) == 0)
        #expect(ChatService.serverOffset(from: ["serverOffset": 1.5]) == 0)
        #expect(ChatService.serverOffset(from: ["serverOffset": "nope"]) == 0)
    }

    @Test func migrationFilesSplitIntoStatements() {
        let migration = Migration(version: 1, name: "x", sql: "-- comment\nCREATE TABLE a (x INT);\n\nCREATE TABLE b (\n  y INT\n);\n")
        #expect(migration.statements == ["CREATE TABLE a (x INT)", "CREATE TABLE b (\n  y INT\n)"])
    }

    @Test func pendingMigrations() throws {
        let known = [Migration(version: 1, name: "a", sql: ""), Migration(version: 2, name: "b", sql: "")]
        #expect(try Migration.pending(known, applied: []).map(\.version) == [1, 2])
        #expect(try Migration.pending(known, applied: [1]).map(\.version) == [2])
        #expect(throws: MigrationError.databaseIsNewer(database: 3, known: 2)) { try Migration.pending(known, applied: [1, 2, 3]) }
    }

    @Test func eventArgumentsKeepTheUsernameAndTimeOutOfTheLastPlace() {
        // A trailing string would be taken by the client for its recovery offset.
        let stored = StoredMessage(id: 7, clientOffset: "o", content: "hi", username: "ada", createdAt: "2026-11-30T09:15:02.123Z")
        #expect(ChatService.arguments(for: stored) == ["hi", 7, ["username": "ada", "created_at": "2026-11-30T09:15:02.123Z"]])
    }

    @Test func aStoredMessageHasOneJSONShape() {
        let stored = StoredMessage(id: 7, clientOffset: "", content: "hi", username: "ada", createdAt: "2026-11-30T09:15:02.123Z")
        let anonymous = StoredMessage(id: 8, clientOffset: "", content: "yo", username: nil, createdAt: "2026-11-30T09:15:03.000Z")
        #expect(stored.json == ["id": 7, "username": "ada", "content": "hi", "created_at": "2026-11-30T09:15:02.123Z"])
        #expect(anonymous.json["username"] == .null)
        // What a node announces, another reads back as it was stored.
        #expect(StoredMessage(json: stored.json) == stored)
        #expect(StoredMessage(json: anonymous.json) == anonymous)
        // The event's metadata is the same fields.
        #expect(ChatService.arguments(for: stored).last == ["username": "ada", "created_at": "2026-11-30T09:15:02.123Z"])
        for broken: JSONValue in [
            [7, "hi", "ada", "2026-11-30T09:15:02.123Z"],  // the positional record of old
            ["id": 7, "content": "hi"],
            ["id": "7", "username": "ada", "content": "hi", "created_at": "x"],
            ["id": 7, "username": 1, "content": "hi", "created_at": "x"],
        ] {
            #expect(StoredMessage(json: broken) == nil)
        }
    }
}
