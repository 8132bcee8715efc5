import Chat
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import SocketIO

/// The listening chat server as a service of the process's `ServiceGroup`: it serves until
/// the group shuts down gracefully (SIGTERM or SIGINT), then drains.
struct ChatServerService: Service {
    let io: SocketIOServer
    let chat: ChatService
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let logger: Logger

    func run() async throws {
        let tls = self.tls
        let channel: any Channel
        do {
            channel = try await io.bind(host: host, port: port, group: MultiThreadedEventLoopGroup.singleton) { channel in
                if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
            }
        } catch {
            throw ListenError(error, host: host, port: port) ?? error
        }
        let address = channel.localAddress.map { "\($0)" } ?? "?"
        logger.info("chat-server listening", metadata: ["address": "\(address)", "tls": "\(tls != nil)"])
        print("chat-server listening on \(address)\(tls != nil ? " (TLS)" : "")")

        // Cancellation (the group's deadline passed, or it failed) skips the wait, not the drain.
        try? await gracefulShutdown()

        // Stop accepting; let queued inserts commit, broadcast and be acknowledged; then close
        // every session with "server shutting down", a reason that lets clients reconnect
        // (and, to the next server, replay from their serverOffset).
        logger.info("draining")
        try? await channel.close()
        await chat.writer.waitUntilIdle(timeout: .seconds(10))
        await io.engine.closeAllSessions()  // returns once the close frames are written
        logger.info("stopped serving")
    }
}

/// The message store as a service: listed before the server in the group, it is shut down
/// after the server has drained, so the last inserts still find it open.
struct MessageStoreService: Service {
    let store: any MessageStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.shutdown()
    }
}
