import ServiceLifecycle

/// The cluster membership as a service of the app's `ServiceGroup`: listed before the HTTP
/// server and the Socket.IO server, it is shut down after them (the group goes in reverse
/// order), once every session is closed and nothing more is broadcast.
extension RedisCluster: Service {
    /// Joins the cluster (`start()`), runs until the group shuts down gracefully, then leaves
    /// it (`shutdown()`): the other nodes stop counting this one at once.
    public func run() async throws {
        start()
        try? await gracefulShutdown()
        try? await shutdown().get()
    }
}
