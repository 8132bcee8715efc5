import SocketIO

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

extension StoredMessage {
    /// The message as JSON, `{id, username, content, created_at}`: the one shape a stored
    /// message has outside the store, in the history endpoint's items and in the records
    /// a node announces to the others. A `chat message` event carries the same fields,
    /// split as the tutorial's client reads them (`ChatService.arguments(for:)`).
    public var json: JSONValue {
        ["id": .number(Double(id)), "username": usernameJSON, "content": .string(content), "created_at": .string(createdAt)]
    }

    /// The message that `json` describes; nil if it is not one. The client offset is not
    /// part of the shape: it stays empty.
    public init?(json: JSONValue) {
        guard let object = json.objectValue, let id = object["id"]?.intValue, case .string(let content)? = object["content"],
            case .string(let createdAt)? = object["created_at"]
        else { return nil }
        let username: String?
        switch object["username"] {
        case .string(let name)?: username = name
        case .null?, nil: username = nil
        default: return nil
        }
        self.init(id: Int64(id), clientOffset: "", content: content, username: username, createdAt: createdAt)
    }

    /// What an event adds to the text and the id: `{username, created_at}`, as in `json`.
    var metadata: JSONValue {
        ["username": usernameJSON, "created_at": .string(createdAt)]
    }

    private var usernameJSON: JSONValue { username.map(JSONValue.string) ?? .null }
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
