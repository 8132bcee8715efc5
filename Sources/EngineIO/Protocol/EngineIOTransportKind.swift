/// The two transports of protocol 4, by their query-string names.
public enum EngineIOTransportKind: String, Sendable, Hashable {
    case polling
    case websocket
}
