/// One socket's way into the chat: the replay of what it missed, a page at a time, then
/// its entry into the live broadcast. A value: `ChatService` performs what it asks for, and
/// the model test drives it through every interleaving of link loss, recovery, database
/// errors and new messages.
///
/// The invariant, kept together with `ChatWriter` and connection-state recovery:
/// - every message up to `cursor` has been emitted to the socket's session exactly once,
///   in id order, and none after it (pages and the writer's hand-over are clipped to ids
///   above the cursor, so nothing is sent twice even if asked twice);
/// - no page carries a message the writer has not broadcast yet (committed rows wait for
///   the hand-over), so no client ever holds an id above the writer's last broadcast one,
///   and a `serverOffset` above it can only come from elsewhere;
/// - the cursor advances in the same event-loop task as the emits, and only while the
///   socket is connected, so the session that connection-state recovery keeps holds the
///   cursor of exactly what was emitted (and buffered for the replay);
/// - the socket joins the chat room only inside the writer's hand-over, between two
///   broadcasts, when its cursor reaches the last message broadcast: every later message
///   reaches it through the room, every earlier one through the replay.
///
/// A recovered socket that had not joined the room yet resumes from its saved cursor; the
/// recovery replay has given it everything up to there.
struct ChatFeed: Hashable, Sendable {
    enum Step: Hashable, Sendable {
        /// Fetch the next page of history after `cursor`.
        case fetch(after: Int64)
        /// A full page went out: wait until the client has taken it in, then fetch.
        case awaitRoomThenFetch(after: Int64)
        /// Ask the writer to hand over the rest and let the socket into the room.
        case join(after: Int64)
        /// In the room: nothing more to do.
        case live
    }

    private(set) var cursor: Int64
    private(set) var step: Step
    let pageSize: Int

    private init(cursor: Int64, pageSize: Int) {
        self.cursor = cursor
        self.step = .fetch(after: cursor)
        self.pageSize = pageSize
    }

    /// The feed of a socket that has just connected, or nil when it needs none (a recovered
    /// socket that was already in the room).
    ///
    /// - Parameters:
    ///   - savedCursor: the cursor kept in a recovered session (nil for a new one).
    ///   - serverOffset: the last id the client says it has (`auth.serverOffset`).
    ///   - latestBroadcastID: the writer's last broadcast id, read now. A client that claims
    ///     more than was ever broadcast (a database restored from a backup, a client of
    ///     another deployment) starts from here, so nothing committed from now on is skipped.
    static func start(
        recovered: Bool, inRoom: Bool, savedCursor: Int64?, serverOffset: Int64, latestBroadcastID: Int64, pageSize: Int
    ) -> ChatFeed? {
        if recovered && inRoom { return nil }
        let cursor = (recovered ? savedCursor : nil) ?? min(max(serverOffset, 0), latestBroadcastID)
        return ChatFeed(cursor: cursor, pageSize: pageSize)
    }

    /// A page of history arrived while the socket is connected: returns what to emit, in
    /// order; the cursor moves past it. Rows after `latestBroadcastID` (committed, their
    /// broadcast still to come) are left to the writer's hand-over.
    mutating func pageArrived(_ page: [StoredMessage], latestBroadcastID: Int64) -> [StoredMessage] {
        let broadcast = page.prefix { $0.id <= latestBroadcastID }
        let fresh = clip(Array(broadcast))
        if let last = fresh.last { cursor = last.id }
        let more = page.count >= pageSize && broadcast.count == page.count
        step = more ? .awaitRoomThenFetch(after: cursor) : .join(after: cursor)
        return fresh
    }

    /// The client took in the last page.
    mutating func roomAvailable() {
        if case .awaitRoomThenFetch(let after) = step { step = .fetch(after: after) }
    }

    /// The writer hands over the messages broadcast since the cursor: returns what to emit
    /// before joining the room.
    mutating func joined(missed: [StoredMessage]) -> [StoredMessage] {
        let fresh = clip(missed)
        if let last = fresh.last { cursor = last.id }
        step = .live
        return fresh
    }

    private func clip(_ messages: [StoredMessage]) -> [StoredMessage] {
        var last = cursor
        return messages.filter { message in
            guard message.id > last else { return false }
            last = message.id
            return true
        }
    }
}
