/// Settings of the chat.
public struct ChatConfiguration: Sendable {
    /// The longest message accepted, in UTF-16 code units (JavaScript's `length`).
    public var maxMessageLength = 10_000
    /// The longest client offset accepted, in characters (the column is VARCHAR(255)).
    public var maxClientOffsetLength = 255
    /// The longest username, in characters, after trimming.
    public var maxUsernameLength = 64
    /// Rows per query when replaying history to a connecting client.
    public var replayPageSize = 200
    /// The room every chat client is in once caught up.
    public var room = "chat"
    /// When set, the chat is closed to strangers: a client must send this in `auth.token`
    /// (and the history endpoint wants it as `?token=` or a Bearer header).
    public var accessToken: String?
    /// One of several servers sharing the store and a cluster adapter: batches are
    /// committed in the store's shared order and announced to the other servers
    /// (`serverSideEmit`), and each server broadcasts every batch to its own clients in id
    /// order. Chat messages then travel outside connection-state recovery: a client that
    /// comes back, recovered or not, is sent what followed its `auth.serverOffset`.
    public var clustered = false

    public init() {}
}
