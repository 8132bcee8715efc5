import Logging
import NIOCore
import SocketIO

/// The chat on a Socket.IO server, with the semantics of the official Socket.IO chat
/// tutorial plus usernames:
///
/// - `chat message` (text, clientOffset, ack): stored; if new, broadcast to every client as
///   `chat message` (text, id, {username, created_at}) and acked with `{id}`; a duplicate
///   client offset (the client retrying) is acked with the stored message's `{id}` and not
///   broadcast again; any other failure gets no ack, so the client retries. Invalid
///   arguments are acked with `{error}` and nothing is stored.
/// - A client connecting without recovery gets every message after `auth.serverOffset`,
///   in id order, before any live one. A page that shows the latest messages first reads
///   them from the history endpoint and connects with the newest id it holds.
/// - Who is online, and who is typing (`ChatPresence`).
/// - In a cluster (`ChatConfiguration.clustered`) every client, recovered or not, gets
///   what followed its `auth.serverOffset`, then `chat live` (last id) once it is live.
public final class ChatService: Sendable {
    public let configuration: ChatConfiguration
    public let store: any MessageStore
    /// The group-committing, id-ordering writer (exposed for a graceful shutdown).
    public let writer: ChatWriter
    let io: SocketIOServer
    private let logger: Logger
    private let delivery: any ChatDelivery

    /// Connects the chat to `io`'s main namespace. `latestID` is the store's highest id.
    public init(io: SocketIOServer, store: any MessageStore, latestID: Int64, configuration: ChatConfiguration = .init(), logger: Logger = Logger(label: "chat")) {
        self.io = io
        self.store = store
        self.configuration = configuration
        self.logger = logger
        // Picked once: the rest of the service is the same on one server and in a cluster.
        delivery = configuration.clustered ? ClusterDelivery() : SingleServerDelivery()
        writer = delivery.makeWriter(io: io, store: store, latestID: latestID, room: configuration.room)
        install()
    }

    /// The arguments of a `chat message` event. The username and the time travel in an
    /// object, never as trailing strings: the client would take a trailing string for a
    /// recovery offset.
    static func arguments(for message: StoredMessage) -> [JSONValue] {
        [.string(message.content), .number(Double(message.id)), message.metadata]
    }

    /// In a cluster, sent to a client when its replay ends and it is in the live chat, with
    /// the last id it was sent.
    public static let liveEvent = "chat live"

    /// The server-side event that announces a committed batch to the other servers.
    static let committedEvent = "chat:committed"

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
        let presence = ChatPresence(namespace: io.sockets, configuration: configuration)
        io.sockets.onConnection { [self] socket in
            let username = (try? ChatService.username(from: socket.handshake.auth, configuration: configuration)) ?? nil
            // Typed: the arguments decode as they come (a missing one as nil, refused below
            // with the chat's own reason), the ack takes a `Receipt`.
            socket.on("chat message") { [self] (text: String?, offset: String?, ack: Ack<Receipt>) in
                self.handleMessage(text: text, offset: offset, ack: ack, socket: socket, username: username)
            }
            presence.install(on: socket, username: username)
            let serverOffset = ChatService.serverOffset(from: socket.handshake.auth)
            switch delivery.replayStart(for: socket, serverOffset: serverOffset, writer: writer, configuration: configuration) {
            case .none:
                return
            case .feed(let feed):
                Task { await self.run(feed, for: socket) }
            case .afterCatchingUp(let feed):
                Task { if let feed = await feed() { await self.run(feed, for: socket) } }
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
        validate(text: arguments.first?.stringValue, offset: arguments.dropFirst().first?.stringValue, username: username)
    }

    func validate(text: String?, offset: String?, username: String?) -> Result<NewMessage, ValidationError> {
        guard let text, !text.isEmpty, text.utf16.count <= configuration.maxMessageLength else {
            return .failure(.text)
        }
        guard let offset, !offset.isEmpty, offset.unicodeScalars.count <= configuration.maxClientOffsetLength else {
            return .failure(.clientOffset)
        }
        return .success(NewMessage(clientOffset: offset, content: text, username: username))
    }

    // MARK: Handlers

    /// The answer to a `chat message`: `{id}` of the stored message, or `{error}`.
    enum Receipt: Encodable, Sendable {
        case stored(id: Int64)
        case refused(ValidationError)

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: AnyKey.self)
            switch self {
            case .stored(let id): try container.encode(id, forKey: AnyKey("id"))
            case .refused(let error): try container.encode(error.rawValue, forKey: AnyKey("error"))
            }
        }

        private struct AnyKey: CodingKey {
            let stringValue: String
            var intValue: Int? { nil }
            init(_ string: String) { stringValue = string }
            init?(stringValue: String) { self.stringValue = stringValue }
            init?(intValue: Int) { nil }
        }
    }

    private func handleMessage(text: String?, offset: String?, ack: Ack<Receipt>, socket: SocketIOSocket, username: String?) {
        let message: NewMessage
        switch validate(text: text, offset: offset, username: username) {
        case .success(let valid):
            message = valid
        case .failure(let error):
            ack(.refused(error))
            return
        }
        let logger = self.logger
        let socketID = socket.id
        // Queued here, synchronously, so a client's messages keep the order it sent them in.
        writer.insert(message) { result in
            switch result {
            case .success(.inserted(let stored)):
                // Already broadcast; the id lets the sender match its message to the broadcast.
                ack(.stored(id: stored.id))
            case .success(.duplicate(let id)):
                // A retry of a stored message: stored, broadcast before.
                ack(.stored(id: id))
            case .failure(let error):
                // No ack: the client's retries will send it again.
                logger.warning("insert failed, not acknowledged", metadata: ["socket": "\(socketID)", "error": "\(error)"])
            }
        }
    }

    // MARK: Replay

    /// Performs what `feed` asks for until the socket is in the room or gone. Every step
    /// that emits runs on the socket's event loop and only while it is connected (see
    /// `ChatFeed`). A database error is retried with backoff while the socket stays
    /// connected: it is never dropped, and nothing is skipped.
    private func run(_ initial: ChatFeed, for socket: SocketIOSocket) async {
        var feed = initial
        var failures = 0
        while true {
            do {
                switch feed.step {
                case .live:
                    return
                case .awaitRoomThenFetch:
                    // The next page waits until the client has taken this one in: a client
                    // replaying a long history, slowly, holds a page or two in server memory,
                    // never the whole history.
                    try await socket.whenWritable().get()
                    feed.roomAvailable()
                case .fetch(let after):
                    let page = try await store.messages(after: after, limit: feed.pageSize)
                    let (current, writer, delivery) = (feed, self.writer, self.delivery)
                    guard let next = try await Self.onLoop(socket, { socket -> ChatFeed? in
                        var feed = current
                        let fresh = feed.pageArrived(page, latestBroadcastID: writer.latestBroadcastID)
                        delivery.emitReplayed(fresh, to: socket, cursor: feed.cursor)
                        return feed
                    }) else { return }
                    feed = next
                case .join(let after):
                    let (current, delivery, room) = (feed, self.delivery, configuration.room)
                    // Between two broadcasts, the writer hands over what was broadcast since
                    // the cursor; the emits and the join happen in one loop task before the
                    // next broadcast leaves.
                    try await writer.subscribe(after: after) { missed in
                        _ = try? await Self.onLoop(socket) { socket -> Void? in
                            var feed = current
                            let fresh = feed.joined(missed: missed)
                            delivery.goLive(socket, missed: fresh, cursor: feed.cursor, room: room)
                            return ()
                        }
                    }
                    return
                }
                failures = 0
            } catch is SocketIODisconnectedError {
                return  // its session keeps the cursor; a recovered socket resumes from it
            } catch {
                failures += 1
                logger.warning("history replay failed, retrying", metadata: ["socket": "\(socket.id)", "error": "\(error)", "attempt": "\(failures)"])
                try? await Task.sleep(for: Self.retryDelay(afterFailures: failures))
                guard (try? await socket.eventLoop.submit({ socket.connected }).get()) == true else { return }
            }
        }
    }

    /// 100 ms, doubling up to 5 s.
    static func retryDelay(afterFailures failures: Int) -> Duration {
        .milliseconds(min(100 << min(failures - 1, 6), 5_000))
    }

    /// Runs `body` on the socket's event loop if the socket is still connected; nil if not.
    private static func onLoop<T: Sendable>(_ socket: SocketIOSocket, _ body: @escaping @Sendable (SocketIOSocket) -> T?) async throws -> T? {
        try await socket.eventLoop.submit { socket.connected ? body(socket) : nil }.get()
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
