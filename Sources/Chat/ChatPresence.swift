import NIOConcurrencyHelpers
import NIOCore
import SocketIO

/// Who is online and who is typing: state that lives only while sockets do, never in the
/// database. Works across servers through the namespace's adapter.
///
/// Presence is a snapshot plus changes, keyed by socket id so that applying either twice
/// is harmless:
/// - `online` (ack): the client is put in the presence room, then answered with every
///   connected socket of the namespace, `[{id, username}]`, from every server.
/// - `presence` `{id, username, online}`: sent to the presence room after a socket's
///   state changed (after it is registered, after it is removed).
///
/// A client replaces its list with the snapshot, then applies the changes that arrived
/// while it waited, in order: a change that happened before the snapshot was read is
/// already in it and repeats harmlessly; one after it is news. It asks again on every
/// connection, recovered or not, since changes are not replayed to it reliably.
///
/// Typing: `typing` from a client is relayed to the chat room, but the sender, as a
/// volatile broadcast `typing` `{username}`: never stored, never in the recovery buffer,
/// dropped for a client that cannot take it now. At most one per socket per
/// `typingInterval` is relayed, so a client cannot turn one event into a flood.
struct ChatPresence: Sendable {
    static let presenceRoom = "chat:presence"
    static let typingInterval: TimeAmount = .seconds(1)

    let namespace: SocketIONamespace
    let chatRoom: String

    func install(on socket: SocketIOSocket, username: String?) {
        let usernameValue: JSONValue = username.map(JSONValue.string) ?? .null
        let state = NIOLockedValueBox(SocketState())
        socket.on("typing") { [chatRoom] event in
            let now = NIODeadline.now()
            let relay = state.withLockedValue { state -> Bool in
                guard now >= state.nextTypingRelay else { return false }
                state.nextTypingRelay = now + Self.typingInterval
                return true
            }
            guard relay else { return }
            event.socket.to(chatRoom).volatile.emit("typing", ["username": usernameValue])
        }
        socket.on("online") { [namespace] event in
            guard let ack = event.ack else { return }
            // Joined before the snapshot is read, so that no change falls between the two.
            event.socket.join(Self.presenceRoom)
            // Requests that come while one is being answered share its answer: a client
            // asking in a loop costs one cluster-wide read at a time.
            let first = state.withLockedValue { state -> Bool in
                state.waitingForSnapshot.append(ack)
                return state.waitingForSnapshot.count == 1
            }
            guard first else { return }
            Task {
                let sockets = (try? await namespace.broadcastOperator.fetchSockets()) ?? []
                let snapshot: JSONValue = .array(
                    sockets.sorted { $0.id < $1.id }.map { socket in
                        ["id": .string(socket.id), "username": Self.username(in: socket.auth)]
                    }
                )
                let waiting = state.withLockedValue { state in
                    defer { state.waitingForSnapshot = [] }
                    return state.waitingForSnapshot
                }
                for ack in waiting { ack(snapshot) }
            }
        }
        socket.onDisconnect { [namespace] socket, _ in
            // The socket has left the namespace's registry by now: a snapshot read from
            // here on does not have it.
            namespace.to(Self.presenceRoom).emit("presence", ["id": .string(socket.id), "username": usernameValue, "online": false])
        }
        // Registered already: a snapshot read from here on has it.
        namespace.to(Self.presenceRoom).emit("presence", ["id": .string(socket.id), "username": usernameValue, "online": true])
    }

    /// The trimmed username a socket connected with, as `ChatService` accepted it.
    static func username(in auth: JSONObject) -> JSONValue {
        guard case .string(let raw)? = auth["username"] else { return .null }
        let trimmed = raw.trimmingWhitespace()
        return trimmed.isEmpty ? .null : .string(trimmed)
    }

    private struct SocketState {
        var nextTypingRelay = NIODeadline.uptimeNanoseconds(0)
        var waitingForSnapshot: [SocketIOAck] = []
    }
}
