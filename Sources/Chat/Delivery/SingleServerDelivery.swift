import SocketIO

/// The chat on one server. Connection-state recovery keeps every message emitted to a
/// socket, and its replay's cursor in its session: a recovered socket resumes its replay
/// where it was (or is live already), and is sent nothing twice.
struct SingleServerDelivery: ChatDelivery {
    func makeWriter(io: SocketIOServer, store: any MessageStore, latestID: Int64, room: String) -> ChatWriter {
        ChatWriter(store: store, latestID: latestID) { messages in
            io.to(room).emit("chat message", batch: messages.map(ChatService.arguments(for:)))
        }
    }

    func replayStart(
        for socket: SocketIOSocket, serverOffset: Int64, writer: ChatWriter, configuration: ChatConfiguration
    ) -> ChatReplayStart {
        let feed = ChatFeed.start(
            recovered: socket.recovered,
            inRoom: socket.rooms.contains(configuration.room),
            savedCursor: socket.chatCursor,
            serverOffset: serverOffset,
            latestBroadcastID: writer.latestBroadcastID,
            pageSize: configuration.replayPageSize
        )
        guard let feed else { return .none }
        // Saved before anything is emitted, so that a session kept from here on says where
        // its replay stands.
        socket.chatCursor = feed.cursor
        return .feed(feed)
    }

    func emitReplayed(_ messages: [StoredMessage], to socket: SocketIOSocket, cursor: Int64) {
        for message in messages { socket.emit("chat message", arguments: ChatService.arguments(for: message)) }
        socket.chatCursor = cursor
    }

    func goLive(_ socket: SocketIOSocket, missed: [StoredMessage], cursor: Int64, room: String) {
        for message in missed { socket.emit("chat message", arguments: ChatService.arguments(for: message)) }
        socket.chatCursor = nil
        socket.join(room)
    }
}

extension SocketIOSocket {
    /// Where the socket's history replay stands (the last id emitted to it), kept in the
    /// session data so that it survives connection-state recovery; nil once it is live.
    var chatCursor: Int64? {
        get { data["chatCursor"]?.intValue.map(Int64.init) }
        set {
            var object = data.objectValue ?? [:]
            object["chatCursor"] = newValue.map { .number(Double($0)) }
            // Back to null once empty: an emptied object keeps its storage, and every idle
            // socket would carry it.
            data = object.isEmpty ? .null : .object(object)
        }
    }
}
