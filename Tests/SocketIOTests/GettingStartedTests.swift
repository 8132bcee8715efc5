import NIOCore
import Testing

@testable import SocketIO

/// The server of the Getting Started article (SocketIO.docc/GettingStarted.md), as written
/// there but for `bind`, so that the article's code keeps compiling and doing what the
/// article says.
@Suite struct GettingStartedTests {
    func articleServer() -> SocketIOServer {
        var configuration = SocketIOConfiguration()
        configuration.connectionStateRecovery = ConnectionStateRecovery()  // keep sessions for 2 minutes
        let io = SocketIOServer(configuration: configuration)

        io.sockets.onConnection { socket in
            // An event with an acknowledgement: the client's callback gets what `ack` sends.
            socket.on("join") { event in
                guard case .string(let room)? = event.arguments.first else { return }
                socket.join(room)
                event.ack?(.string("joined \(room)"))
            }
            // A broadcast to a room, but not to the sender.
            socket.on("say") { event in
                socket.to("lobby").emit("said", arguments: event.arguments)
            }
        }

        // Namespaces: clients connect to `io("/admin")`; middlewares can refuse them.
        let admin = io.of("/admin")
        admin.use { socket in
            guard socket.handshake.auth["token"] == "secret" else { throw SocketIOConnectError("not authorized") }
        }
        return io
    }

    @Test func theArticlesServerDoesWhatTheArticleSays() async throws {
        let io = articleServer()
        let ada = try await TestClient.webSocket(to: io)
        let bob = try await TestClient.webSocket(to: io)
        #expect(try await ada.connect()["pid"] != nil)  // recovery is on: a private session id
        try await bob.connect()
        for client in [ada, bob] {
            try await client.send(#"421["join","lobby"]"#)
            #expect(try await client.nextText() == #"431["joined lobby"]"#)
        }
        try await ada.send(#"42["say","hello"]"#)
        let said = try await bob.events(1)
        #expect(said.first?.prefix(2) == ["said", "hello"])  // then the recovery offset
        #expect(try await ada.isQuiet())  // not to the sender
        let stranger = try await TestClient.webSocket(to: io)
        await #expect(throws: SocketIOConnectError.self) { try await stranger.connect("/admin", auth: ["token": "guess"]) }
        #expect(try await stranger.connect("/admin", auth: ["token": "secret"])["sid"] != nil)
    }
}
