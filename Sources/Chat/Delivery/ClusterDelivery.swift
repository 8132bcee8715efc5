import SocketIO

/// The chat on a node of a cluster. Messages are numbered by the store, not by the
/// cluster's recovery log, and reach the other nodes as committed records (the writer puts
/// them in one order on every node). So chat messages carry no recovery offset: every
/// client, recovered or not, is sent what follows its `auth.serverOffset`, and `chat live`
/// (the last id it was sent) once it is in the live chat.
struct ClusterDelivery: ChatDelivery {
    func makeWriter(io: SocketIOServer, store: any MessageStore, latestID: Int64, room: String) -> ChatWriter {
        let namespace = io.sockets
        let writer = ChatWriter(
            store: store, latestID: latestID,
            publish: { messages, previousID in
                namespace.serverSideEmit(ChatService.committedEvent, [.number(Double(previousID)), .array(messages.map(\.json))])
            },
            broadcast: { messages in
                namespace.broadcastOperator.local.to(room).emit("chat message", batch: messages.map(ChatService.arguments(for:)))
            }
        )
        namespace.onServerSideEmit(ChatService.committedEvent) { arguments in
            guard let previousID = arguments.first?.intValue, let records = arguments.dropFirst().first?.arrayValue else { return }
            let messages = records.compactMap(StoredMessage.init(json:))
            guard messages.count == records.count else { return writer.resynchronize() }
            writer.received(messages, after: Int64(previousID))
        }
        namespace.onClusterResumed { writer.resynchronize() }
        return writer
    }

    func replayStart(
        for socket: SocketIOSocket, serverOffset: Int64, writer: ChatWriter, configuration: ChatConfiguration
    ) -> ChatReplayStart {
        // Chat messages are not in the recovery log here: the client says what it has, and
        // joins the room again after its replay (nothing reached it from the room in
        // between: this runs in the loop task that registered it).
        if socket.recovered { socket.leave(configuration.room) }
        let broadcastAtConnect = writer.latestBroadcastID
        guard serverOffset > broadcastAtConnect else {
            return ChatFeed.start(
                recovered: false, inRoom: false, savedCursor: nil, serverOffset: serverOffset,
                latestBroadcastID: broadcastAtConnect, pageSize: configuration.replayPageSize
            ).map(ChatReplayStart.feed) ?? .none
        }
        // The client may have got ids from a node ahead of this one: catch up with the
        // store first, or its offset would be clamped below what it holds and it would be
        // sent those rows again. An offset beyond everything stored is clamped to what this
        // node had broadcast when the client connected, so that nothing committed since is
        // skipped.
        let pageSize = configuration.replayPageSize
        return .afterCatchingUp {
            await writer.resynchronizeNow()
            let latest = writer.latestBroadcastID
            return ChatFeed.start(
                recovered: false, inRoom: false, savedCursor: nil,
                serverOffset: serverOffset <= latest ? serverOffset : broadcastAtConnect,
                latestBroadcastID: latest, pageSize: pageSize
            )
        }
    }

    func emitReplayed(_ messages: [StoredMessage], to socket: SocketIOSocket, cursor: Int64) {
        for message in messages { socket.emit("chat message", arguments: ChatService.arguments(for: message), recoverable: false) }
    }

    func goLive(_ socket: SocketIOSocket, missed: [StoredMessage], cursor: Int64, room: String) {
        for message in missed { socket.emit("chat message", arguments: ChatService.arguments(for: message), recoverable: false) }
        socket.join(room)
        // Chat messages carry no recovery offset here; this one does, so that the client
        // holds one and can be recovered (the official client asks only with an offset).
        socket.emit(ChatService.liveEvent, arguments: [.number(Double(cursor))])
    }
}
