import ServiceLifecycle

/// The Socket.IO server as a service of the app's `ServiceGroup`, listed after the HTTP
/// server (Hummingbird's `Application`) so that it is shut down before it: the group
/// shuts services down in reverse order.
extension SocketIOServer: Service {
    /// Runs until the group shuts down gracefully, then refuses new sessions (503, which
    /// clients retry), and closes every session with "server shutting down", a reason the
    /// official clients reconnect after (to another node, behind a balancer, where they are
    /// recovered). Returns once the close frames and answers have been written, so the HTTP
    /// server then finds its connections ending. A service listed after this one (the
    /// chat's writer) is shut down first: it drains what it holds while sessions are open.
    public func run() async throws {
        // Cancellation (the group's deadline passed, or it failed) skips the wait, not the close.
        try? await gracefulShutdown()
        stopAccepting()
        await engine.closeAllSessions()
    }

    /// Refuses new sessions from now on (503 with `Retry-After`); open ones go on. The first
    /// step of a graceful shutdown.
    public func stopAccepting() {
        engine.stopAccepting()
    }
}
