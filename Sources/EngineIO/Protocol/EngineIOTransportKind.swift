/// The two transports of protocol 4, by their query-string names.
public enum EngineIOTransportKind: String, Sendable, Hashable {
    /// HTTP long-polling: a GET held open for the server's packets, a POST for the client's.
    case polling
    /// A WebSocket, from the start or upgraded to from polling.
    case websocket
}
