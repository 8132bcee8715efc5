import NIOConcurrencyHelpers
import NIOCore
import SocketIO

/// Who is online and who is typing: state that lives only while sockets do, never in the
/// database. Works across servers through the namespace's adapter.
///
/// Presence is a snapshot plus changes, keyed by socket id so that applying either twice
/// is harmless:
/// - `online` (ack): the client is put in the presence room, then answered with every
///   connected socket of the namespace, `[{id, username}]`, from every server (`null` if
///   a server did not answer; up to four requests of a socket wait, others are dropped).
/// - `presence` `[{id, username, online}…]`: sent to the presence room after sockets'
///   states changed (after they are registered, after they are removed), the changes of
///   `changeDelay` together, in the order they happened: a reconnection storm of n
///   clients is a few broadcasts, not 2n.
///
/// A client replaces its list with the snapshot, then applies the changes that arrived
/// while it waited, in order: a change that happened before the snapshot was read is
/// already in it and repeats harmlessly; one after it is news. It asks again on every
/// connection, recovered or not, since changes are not replayed to it reliably.
///
/// Typing: `typing` from a client is relayed to the chat room, but the sender, as a
/// volatile broadcast `typing` `{username}`: never stored, never in the recovery buffer,
/// dropped for a client that cannot take it now. At most one per socket per
/// `typingInterval` is relayed, so a client cannot turn one event into a flood: the first
/// at once, and the last of the rest at the interval's end (one relayed, none lost).
struct ChatPresence: Sendable {
    static let presenceRoom = "chat:presence"
    static let typingInterval: TimeAmount = .seconds(1)
    static let maxWaitingPerSocket = 4
    static let changeDelay: TimeAmount = .milliseconds(100)

    let chatRoom: String
    let snapshots: SnapshotReader
    let changes: PresenceChanges

    init(namespace: SocketIONamespace, configuration: ChatConfiguration) {
        self.chatRoom = configuration.room
        self.snapshots = SnapshotReader {
            let sockets = try await namespace.broadcastOperator.fetchSockets()
            return .array(
                sockets.sorted { $0.id < $1.id }.map { socket in
                    // Every connected socket passed the middleware that checks the name.
                    let username = (try? ChatService.username(from: socket.auth, configuration: configuration)) ?? nil
                    return ["id": .string(socket.id), "username": username.map(JSONValue.string) ?? .null]
                }
            )
        }
        self.changes = PresenceChanges(delay: Self.changeDelay) { batch in
            namespace.to(Self.presenceRoom).emit("presence", .array(batch))
        }
    }

    func install(on socket: SocketIOSocket, username: String?) {
        let usernameValue: JSONValue = username.map(JSONValue.string) ?? .null
        let state = NIOLockedValueBox(SocketState())
        socket.on("typing") { [chatRoom] event in
            let socket = event.socket
            let relay: @Sendable () -> Void = {
                guard socket.connected else { return }
                socket.to(chatRoom).volatile.emit("typing", ["username": usernameValue])
            }
            let now = NIODeadline.now()
            let decision = state.withLockedValue { state -> TypingDecision in
                if now >= state.nextTypingRelay {
                    state.nextTypingRelay = now + Self.typingInterval
                    return .relayNow
                }
                // Within the interval: relayed once at its end, so that what a client said
                // last is never lost (a keystroke right after a sent message, say).
                guard !state.trailingTypingScheduled else { return .drop }
                state.trailingTypingScheduled = true
                return .relayAt(state.nextTypingRelay)
            }
            switch decision {
            case .relayNow:
                relay()
            case .relayAt(let deadline):
                socket.eventLoop.scheduleTask(deadline: deadline) {
                    state.withLockedValue { state in
                        state.trailingTypingScheduled = false
                        state.nextTypingRelay = deadline + Self.typingInterval
                    }
                    relay()
                }
            case .drop:
                break
            }
        }
        socket.on("online") { [snapshots] event in
            guard let ack = event.ack else { return }
            // At most a few requests of one socket wait at a time: the client gets an
            // answer to each of those; beyond them, it is asking in a loop.
            let admitted = state.withLockedValue { state -> Bool in
                guard state.waitingForSnapshot < Self.maxWaitingPerSocket else { return false }
                state.waitingForSnapshot += 1
                return true
            }
            guard admitted else { return }
            // Joined before the snapshot is read, so that no change falls between the two.
            event.socket.join(Self.presenceRoom)
            snapshots.request { snapshot in
                state.withLockedValue { $0.waitingForSnapshot -= 1 }
                ack(snapshot)
            }
        }
        socket.onDisconnect { [changes] socket, _ in
            // The socket has left the namespace's registry by now: a snapshot read from
            // here on does not have it.
            changes.add(["id": .string(socket.id), "username": usernameValue, "online": false], on: socket.eventLoop)
        }
        // Registered already: a snapshot read from here on has it.
        changes.add(["id": .string(socket.id), "username": usernameValue, "online": true], on: socket.eventLoop)
    }

    private enum TypingDecision {
        case relayNow
        case relayAt(NIODeadline)
        case drop
    }

    private struct SocketState {
        var nextTypingRelay = NIODeadline.uptimeNanoseconds(0)
        var trailingTypingScheduled = false
        var waitingForSnapshot = 0
    }
}

/// Reads who is online for every socket that asks, one read at a time per server: the
/// requests that arrive while a read runs are answered together by the next one, which
/// starts after all of them (an answer must not predate its request: the requester joined
/// the presence room before asking, and changes before that reach it only through the
/// snapshot). A reconnection storm of n clients thus costs a few reads of n sockets, not n
/// of them. When a read fails (a node of the cluster did not answer in time) the requests
/// are answered with null, and the clients ask again.
final class SnapshotReader: Sendable {
    typealias Answer = @Sendable (JSONValue) -> Void
    typealias Read = @Sendable () async throws -> JSONValue

    private let read: Read
    private let state = NIOLockedValueBox(State())

    private struct State {
        var reading = false
        var waiting: [Answer] = []
    }

    /// Answers with what `read` returns.
    init(read: @escaping Read) {
        self.read = read
    }

    func request(_ answer: @escaping Answer) {
        let start = state.withLockedValue { state -> Bool in
            state.waiting.append(answer)
            defer { state.reading = true }
            return !state.reading
        }
        if start { Task { await self.readWhileAsked() } }
    }

    private func readWhileAsked() async {
        while true {
            let batch = state.withLockedValue { state -> [Answer] in
                defer { state.waiting = [] }
                if state.waiting.isEmpty { state.reading = false }
                return state.waiting
            }
            guard !batch.isEmpty else { return }
            let snapshot = (try? await read()) ?? .null
            for answer in batch { answer(snapshot) }
        }
    }
}

/// Presence changes gathered for a short while and sent as one broadcast, in the order they
/// were added. Each is added after its state change, so each leaves after it too.
final class PresenceChanges: Sendable {
    private let delay: TimeAmount
    private let send: @Sendable ([JSONValue]) -> Void
    private let state = NIOLockedValueBox(State())

    private struct State {
        var pending: [JSONValue] = []
        var scheduled = false
    }

    init(delay: TimeAmount, send: @escaping @Sendable ([JSONValue]) -> Void) {
        self.delay = delay
        self.send = send
    }

    /// Adds a change; the first of a batch schedules its sending on `eventLoop`.
    func add(_ change: JSONValue, on eventLoop: any EventLoop) {
        let first = state.withLockedValue { state -> Bool in
            state.pending.append(change)
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard first else { return }
        eventLoop.scheduleTask(in: delay) { self.flush(on: eventLoop) }
    }

    /// Sends what is pending. Changes added meanwhile wait for the next batch, which is
    /// scheduled only once this one has been handed over, so batches leave in order.
    private func flush(on eventLoop: any EventLoop) {
        let batch = state.withLockedValue { state -> [JSONValue] in
            defer { state.pending = [] }
            return state.pending
        }
        if !batch.isEmpty { send(batch) }
        let more = state.withLockedValue { state -> Bool in
            state.scheduled = !state.pending.isEmpty
            return state.scheduled
        }
        if more { eventLoop.scheduleTask(in: delay) { self.flush(on: eventLoop) } }
    }
}
