/// A message as the store keeps it.
public struct StoredMessage: Sendable, Equatable {
    public var id: Int64
    public var clientOffset: String
    public var content: String
    public var username: String?
    /// When it was stored: ISO 8601 in UTC with fractional seconds (`2026-11-30T09:15:02.123Z`).
    public var createdAt: String

    public init(id: Int64, clientOffset: String, content: String, username: String?, createdAt: String) {
        self.id = id
        self.clientOffset = clientOffset
        self.content = content
        self.username = username
        self.createdAt = createdAt
    }
}

/// A message a client sent, validated, not stored yet.
public struct NewMessage: Sendable, Equatable {
    public var clientOffset: String
    public var content: String
    public var username: String?

    public init(clientOffset: String, content: String, username: String?) {
        self.clientOffset = clientOffset
        self.content = content
        self.username = username
    }
}

/// What became of one message of a batch.
public enum InsertOutcome: Sendable, Equatable {
    /// Stored now, with its id.
    case inserted(StoredMessage)
    /// A message with the same client offset was stored before, with this id: the client
    /// is retrying.
    case duplicate(id: Int64)
}
