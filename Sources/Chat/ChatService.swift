import EngineIO
import Logging
import NIOCore
import SocketIO

/// The chat on a Socket.IO server, with the semantics of the official Socket.IO chat
/// tutorial plus usernames:
///
/// - `chat message` (text, clientOffset, ack): stored; if new, broadcast to every client as
///   `chat message` (text, id, {username}) and acked; a duplicate client offset (the client
///   retrying) is acked without a broadcast; any other failure gets no ack, so the client
///   retries. Invalid arguments are acked with `{error}` and nothing is stored.
/// - A client connecting without recovery gets every message after `auth.serverOffset`,
///   in id order, before any live one.
public final class ChatService: Sendable {
    public let configuration: ChatConfiguration
    public let store: any MessageStore
    /// The group-committing, id-ordering writer (exposed for a graceful shutdown).
    public let writer: ChatWriter
    private let io: SocketIOServer
    private let logger: Logger

    /// Connects the chat to `io`'s main namespace. `latestID` is the store's highest id.
    public init(io: SocketIOServer, store: any MessageStore, latestID: Int64, configuration: ChatConfiguration = .init(), logger: Logger = Logger(label: "chat")) {
        self.io = io
        self.store = store
        self.configuration = configuration
        self.logger = logger
        let room = configuration.room
        self.writer = ChatWriter(store: store, latestID: latestID) { messages in
            io.to(room).emit("chat message", batch: messages.map(ChatService.arguments(for:)))
        }
        install()
    }

    /// The arguments of a `chat message` event. The username travels in an object, never as
    /// a trailing string: the client would take a trailing string for a recovery offset.
    static func arguments(for message: StoredMessage) -> [JSONValue] {
        [.string(message.content), .number(Double(message.id)), ["username": message.username.map(JSONValue.string) ?? .null]]
    }

    private func install() {
        let configuration = self.configuration
        io.sockets.use { socket in
            if let token = configuration.accessToken {
                guard case .string(let given)? = socket.handshake.auth["token"], ChatService.constantTimeEqual(given, token) else {
                    throw SocketIOConnectError("not authorized")
                }
            }
            _ = try ChatService.username(from: socket.handshake.auth, configuration: configuration)
        }
        io.sockets.onConnection { [self] socket in
            let username = (try? ChatService.username(from: socket.handshake.auth, configuration: configuration)) ?? nil
            socket.on("chat message") { [self] event in
                self.handleMessage(event, username: username)
            }
            if !socket.recovered {
                let after = ChatService.serverOffset(from: socket.handshake.auth)
                Task { await self.catchUp(socket, after: after) }
            }
        }
    }

    // MARK: Validation

    /// Compares secrets without an early exit, so timing does not tell how much matched.
    public static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(truncatingIfNeeded: x.count ^ y.count)
        for index in 0..<max(x.count, y.count) {
            difference |= (index < x.count ? x[index] : 0) ^ (index < y.count ? y[index] : 0)
        }
        return difference == 0
    }

    /// The trimmed username from the auth payload; nil when none was given.
    static func username(from auth: JSONObject, configuration: ChatConfiguration) throws -> String? {
        guard let value = auth["username"], value != .null else { return nil }
        guard case .string(let raw) = value else { throw SocketIOConnectError("invalid username", data: ["reason": "not a string"]) }
        let trimmed = raw.trimmingWhitespace()
        guard !trimmed.isEmpty, trimmed.unicodeScalars.count <= configuration.maxUsernameLength else {
            throw SocketIOConnectError("invalid username", data: ["reason": .string("must be 1 to \(configuration.maxUsernameLength) characters")])
        }
        return trimmed
    }

    /// `auth.serverOffset`: the id of the last message the client has, as a number or a
    /// numeric string; 0 when absent or invalid.
    static func serverOffset(from auth: JSONObject) -> Int64 {
        switch auth["serverOffset"] {
        case .number(let number)? where number >= 0 && number.rounded() == number && number < 9e15: Int64(number)
        case .string(let text)?: Int64(text).map { max($0, 0) } ?? 0
        default: 0
        }
    }

    enum ValidationError: String, Error {
        case text = "the message must be a non-empty string of at most the maximum length"
        case clientOffset = "the client offset must be a non-empty string of at most 255 characters"
    }

    func validate(_ arguments: [JSONValue], username: String?) -> Result<NewMessage, ValidationError> {
        guard case .string(let text)? = arguments.first, !text.isEmpty, text.utf16.count <= configuration.maxMessageLength else {
            return .failure(.text)
        }
        guard arguments.count > 1, case .string(let offset) = arguments[1], !offset.isEmpty,
            offset.unicodeScalars.count <= configuration.maxClientOffsetLength
        else {
            return .failure(.clientOffset)
        }
        return .success(NewMessage(clientOffset: offset, content: text, username: username))
    }

    // MARK: Handlers

    private func handleMessage(_ event: SocketIOEvent, username: String?) {
        let message: NewMessage
        switch validate(event.arguments, username: username) {
        case .success(let valid):
            message = valid
        case .failure(let error):
            event.ack?(["error": .string(error.rawValue)])
            return
        }
        let ack = event.ack
        let logger = self.logger
        let sid = event.socket.engineSession.id
        // Queued here, synchronously, so a client's messages keep the order it sent them in.
        writer.insert(message) { result in
            switch result {
            case .success:
                // New (already broadcast) or a retry of a stored one: either way it is stored.
                ack?()
            case .failure(let error):
                // No ack: the client's retries will send it again.
                logger.warning("insert failed, not acknowledged", metadata: ["sid": "\(sid)", "error": "\(error)"])
            }
        }
    }

    /// Replays what a client missed, then lets it into the live broadcast.
    private func catchUp(_ socket: SocketIOSocket, after serverOffset: Int64) async {
        var after = serverOffset
        do {
            // Pages from the store until caught up with what is committed...
            while true {
                let page = try await store.messages(after: after, limit: configuration.replayPageSize)
                for message in page { socket.emit("chat message", arguments: Self.arguments(for: message)) }
                guard let last = page.last else { break }
                after = last.id
                if page.count < configuration.replayPageSize { break }
                // The next page waits until the client has taken this one in: a client
                // replaying a long history, slowly, holds a page or two in server memory,
                // never the whole history.
                try await socket.engineSession.whenWritable().get()
            }
            // ...then the writer closes the gap and joins the room between two broadcasts.
            let room = configuration.room
            try await writer.subscribe(after: after) { missed in
                for message in missed { socket.emit("chat message", arguments: Self.arguments(for: message)) }
                socket.join(room)
            }.get()
        } catch is EngineIOSessionClosedError {
            // The client left mid-replay; it catches up from its serverOffset next time.
        } catch {
            // The client would otherwise skip rows: drop its link so it reconnects and retries.
            logger.warning("history replay failed, dropping the connection", metadata: ["sid": "\(socket.engineSession.id)", "error": "\(error)"])
            socket.engineSession.close()
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }) else { return "" }
        let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })!
        return String(scalars[start...end])
    }
}
