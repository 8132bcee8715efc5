import ServiceLifecycle

/// The chat as a service of the app's `ServiceGroup`, listed after the Socket.IO server so
/// that it is shut down first (the group goes in reverse order).
extension ChatService: Service {
    /// Runs until the group shuts down gracefully, then stops new sessions (503: clients
    /// retry, elsewhere behind a balancer) and lets the writer commit, broadcast and
    /// acknowledge what it already holds, for up to `drainTimeout`, while the sessions are
    /// still open to receive the acknowledgements. The Socket.IO server closes them next.
    public func run() async throws {
        try? await gracefulShutdown()
        io.stopAccepting()
        await writer.waitUntilIdle(timeout: Self.drainTimeout)
    }

    /// How long a shutdown waits for queued messages to be committed and acknowledged.
    public static let drainTimeout: Duration = .seconds(10)
}
