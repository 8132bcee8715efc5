import SocketIO

/// How the chat's messages reach its clients: on one server (`SingleServerDelivery`) or on
/// a node of a cluster (`ClusterDelivery`). `ChatService` picks one when it starts and asks
/// it at each point where the two differ; everything else (the feed, its model, the writer's
/// hand-over) is the same.
protocol ChatDelivery: Sendable {
    /// The writer, wired to send what it commits to the chat room's sockets (and, in a
    /// cluster, to announce it to the other nodes).
    func makeWriter(io: SocketIOServer, store: any MessageStore, latestID: Int64, room: String) -> ChatWriter

    /// Where a socket that has just connected starts its replay. Called in its connection
    /// handler, on its loop, before anything is emitted to it.
    func replayStart(
        for socket: SocketIOSocket, serverOffset: Int64, writer: ChatWriter, configuration: ChatConfiguration
    ) -> ChatReplayStart

    /// Emits a page of the replay, `cursor` being the last id in it. On the socket's loop,
    /// while it is connected.
    func emitReplayed(_ messages: [StoredMessage], to socket: SocketIOSocket, cursor: Int64)

    /// Emits the last messages the socket missed and lets it into `room`, between two
    /// broadcasts (the writer's hand-over). On the socket's loop, while it is connected.
    func goLive(_ socket: SocketIOSocket, missed: [StoredMessage], cursor: Int64, room: String)
}

/// Where a connecting socket's replay starts.
enum ChatReplayStart: Sendable {
    /// It needs none: it is in the live chat already.
    case none
    /// From this feed, now.
    case feed(ChatFeed)
    /// From the feed this returns, once the node has caught up with the store.
    case afterCatchingUp(@Sendable () async -> ChatFeed?)
}
