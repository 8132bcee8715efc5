/// Where the chat keeps its messages. Implementations run their blocking calls on a
/// thread pool of their own, never on an event loop.
public protocol MessageStore: Sendable {
    /// Applies the migrations the database has not seen, in order, and records them.
    /// Throws `MigrationError.databaseIsNewer` when the database has a version this build
    /// does not know. Returns the versions applied now.
    func migrate(_ migrations: [Migration]) async throws -> [Int]

    /// Inserts a batch in one transaction (a group commit). Returns one outcome per message,
    /// in order; a duplicate client offset affects only its own message. Throws, with
    /// nothing committed, on any other failure.
    func insert(_ batch: [NewMessage]) async throws -> [InsertOutcome]

    /// Inserts a batch as `insert` does, in the one commit order of every process writing
    /// to the store: ids rise in the order batches commit, and `previousID` is the highest
    /// id committed before this batch. A store shared by several processes must hold a
    /// lock across both (InnoDB gives ids at insert, not at commit: two concurrent writers
    /// can commit id 16 before id 10). The default suits a store with one writer.
    func insertInCommitOrder(_ batch: [NewMessage]) async throws -> (outcomes: [InsertOutcome], previousID: Int64)

    /// Up to `limit` messages with an id above `id`, in id order.
    func messages(after id: Int64, limit: Int) async throws -> [StoredMessage]

    /// The newest `limit` messages with an id below `id`, in id order: a page of history
    /// read backwards (`Int64.max` for the latest page). Both reads walk the primary key,
    /// so a page costs the same in a room of any size.
    func messages(before id: Int64, limit: Int) async throws -> [StoredMessage]

    /// The highest id stored, 0 when there is none.
    func latestID() async throws -> Int64

    /// Whether the database answers.
    func ping() async -> Bool

    func shutdown() async
}

extension MessageStore {
    public func insertInCommitOrder(_ batch: [NewMessage]) async throws -> (outcomes: [InsertOutcome], previousID: Int64) {
        let previousID = try await latestID()
        return (try await insert(batch), previousID)
    }
}
