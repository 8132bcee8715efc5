import Chat
import NIOCore
import SocketIO
import SocketIOTesting
import Testing

/// `ChatService` through its socket, with SocketIOTesting's in-process client: what a user
/// of the chat sees, on a real server and a real (SQLite) store, with no port.
@Suite struct ChatServiceTests {
    struct Receipt: Decodable, Equatable {
        var id: Int64?
        var error: String?
    }

    struct Meta: Decodable {
        var username: String?
        var created_at: String
    }

    /// A chat on a fresh SQLite store, with connection-state recovery as chat-server has it.
    func chat(history: Int = 0) async throws -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        configuration.connectionStateRecovery = ConnectionStateRecovery()
        let io = SocketIOServer(configuration: configuration)
        let store = try await StoreKind.sqlite.makeStore()
        _ = try await store.migrate(StoreKind.sqlite.migrations)
        for index in 0..<history {
            _ = try await store.insert([NewMessage(clientOffset: "seed-\(index)", content: "old \(index)", username: "old")])
        }
        _ = ChatService(io: io, store: store, latestID: try await store.latestID())
        return io
    }

    @Test func aMessageIsStoredBroadcastAndAckedWithItsID() async throws {
        let io = try await chat()
        let ada = try await SocketIOTestClient.connect(to: io, auth: ["username": "ada", "serverOffset": 0])
        let bob = try await SocketIOTestClient.connect(to: io, auth: ["username": "bob", "serverOffset": 0])
        let receipt = try await ada.emitWithAck("chat message", "hello", "ada-1", replyAs: Receipt.self)
        #expect(receipt == Receipt(id: 1))
        let event = try await bob.nextEvent(named: "chat message")
        let (text, id, meta) = try event.decode(as: String.self, Int64.self, Meta.self)
        #expect(text == "hello" && id == 1 && meta.username == "ada")
        #expect(event.offset != nil)  // recoverable
        // A retry with the same client offset: the same id, and no second broadcast.
        #expect(try await ada.emitWithAck("chat message", "hello", "ada-1", replyAs: Receipt.self) == Receipt(id: 1))
        #expect(try await bob.isQuiet())
    }

    @Test func invalidMessagesAreRefusedWithAReason() async throws {
        let io = try await chat()
        let ada = try await SocketIOTestClient.connect(to: io, auth: ["username": "ada"])
        let empty = try await ada.emitWithAck("chat message", "", "ada-1", replyAs: Receipt.self)
        #expect(empty.error == "the message must be a non-empty string of at most the maximum length")
        let noOffset = try await ada.emitWithAck("chat message", "text", replyAs: Receipt.self)
        #expect(noOffset.error == "the client offset must be a non-empty string of at most 255 characters")
        let wrongType = try await ada.emitWithAck("chat message", .number(5), "ada-2")
        #expect(wrongType.first?["error"]?.stringValue?.hasPrefix("invalid arguments: argument 1") == true)
    }

    @Test func aClientThatComesBackIsSentWhatFollowedItsServerOffset() async throws {
        let io = try await chat(history: 5)
        let carol = try await SocketIOTestClient.connect(to: io, auth: ["username": "carol", "serverOffset": 3])
        var ids: [Int64] = []
        for _ in 0..<2 {
            let (_, id, _) = try await carol.nextEvent(named: "chat message").decode(as: String.self, Int64.self, Meta.self)
            ids.append(id)
        }
        #expect(ids == [4, 5])
        #expect(try await carol.isQuiet())
    }

    @Test func aLostLinkIsRecoveredWithWhatWasMissed() async throws {
        let io = try await chat()
        let ada = try await SocketIOTestClient.connect(to: io, auth: ["username": "ada", "serverOffset": 0])
        let bob = try await SocketIOTestClient.connect(to: io, auth: ["username": "bob", "serverOffset": 0])
        _ = try await ada.emitWithAck("chat message", "before", "ada-1", replyAs: Receipt.self)
        _ = try await bob.nextEvent(named: "chat message")
        let id = bob.id
        try await bob.dropConnection()
        _ = try await ada.emitWithAck("chat message", "while away", "ada-2", replyAs: Receipt.self)
        #expect(try await bob.reconnect())  // recovered: the same socket
        #expect(bob.id == id)
        let missed = try await bob.nextEvent(named: "chat message")
        #expect(try missed.decode(as: String.self) == "while away")
        #expect(try await bob.isQuiet())
    }
}
