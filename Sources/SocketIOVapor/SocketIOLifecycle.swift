import SocketIO
import Vapor

/// Socket.IO in a Vapor app's lifecycle: on shutdown, new sessions are refused and every
/// session is closed with "server shutting down", a reason the official clients reconnect
/// after (to another node, behind a balancer).
///
/// ```swift
/// app.lifecycle.use(SocketIOLifecycle(io))
/// ```
public struct SocketIOLifecycle: LifecycleHandler {
    /// The server this handler closes.
    public let io: SocketIOServer

    /// A handler for `io`.
    public init(_ io: SocketIOServer) {
        self.io = io
    }

    /// Closes every session; returns once their close frames and answers are written.
    public func shutdownAsync(_ application: Application) async {
        io.stopAccepting()
        await io.engine.closeAllSessions()
    }

    /// Closes every session, from a caller that cannot wait asynchronously: the closes are
    /// started, not awaited.
    public func shutdown(_ application: Application) {
        io.stopAccepting()
        let engine = io.engine
        Task { await engine.closeAllSessions() }
    }
}
