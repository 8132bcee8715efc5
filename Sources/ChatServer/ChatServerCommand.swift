import ArgumentParser
import EngineIO
import NIOCore
import NIOPosix

@main
struct ChatServerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-server",
        abstract: "The Socket.IO chat server."
    )

    @OptionGroup var options: ServerOptions

    func run() async throws {
        // Until the Socket.IO layer lands, the server speaks Engine.IO and echoes messages.
        let server = EngineIOServer(configuration: options.engineIO, delegate: EchoDelegate())
        let channel = try await server.bind(host: options.host, port: options.port, group: MultiThreadedEventLoopGroup.singleton)
        print("chat-server listening on \(channel.localAddress.map { "\($0)" } ?? "?")")
        try await channel.closeFuture.get()
    }
}

final class EchoDelegate: EngineIOServerDelegate {
    func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler { Echo() }
}

final class Echo: EngineIOSessionHandler {
    func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) { session.send(message) }
    func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) {}
}
