import Chat
import ServiceLifecycle

/// The message store as a service: listed first in the group, it is shut down last, once
/// the chat has drained and every session is closed, so the last inserts still find it open.
struct MessageStoreService: Service {
    let store: any MessageStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.shutdown()
    }
}
