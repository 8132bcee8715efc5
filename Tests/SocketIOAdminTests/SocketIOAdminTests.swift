import NIOCore
import SocketIO
import SocketIOTesting
import Testing

@testable import SocketIOAdmin

/// The admin UI's protocol, as python-socketio's admin tests drive the reference: an admin
/// client in `/admin` beside ordinary ones.
@Suite struct SocketIOAdminTests {
    static let credentials: JSONObject = ["username": "admin", "password": "secret"]

    func server(_ configure: (inout SocketIOAdminConfiguration) -> Void = { _ in }) throws -> (SocketIOServer, SocketIOAdmin) {
        let io = SocketIOServer()
        io.sockets.onConnection { socket in
            socket.on("enter") { event in
                if case .string(let room)? = event.arguments.first { socket.join(room) }
            }
            socket.on("shout") { event in socket.broadcast.emit("shouted", arguments: event.arguments) }
        }
        _ = io.of("/foo")
        var configuration = SocketIOAdminConfiguration(credentials: try .init(username: "admin", password: .plain("secret")))
        configuration.statsInterval = .milliseconds(100)
        configure(&configuration)
        let admin = SocketIOAdmin(server: io, configuration: configuration)
        try admin.start()
        return (io, admin)
    }

    @Test func theAdminIsToldTheConfigTheSocketsAndTheStatistics() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        let ada = try await SocketIOTestClient.connect(to: io)
        try await ada.emit("enter", "lobby")
        let foo = try await SocketIOTestClient.connect(to: io, namespace: "/foo")
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)

        let session = try await client.nextEvent(named: "session")
        #expect(session.arguments.first?.stringValue?.count == 32)
        let config = try await client.nextEvent(named: "config")
        #expect(config.arguments == [[
            "supportedFeatures": ["EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"],
        ]])
        let sockets = try #require(try await client.nextEvent(named: "all_sockets").arguments.first?.arrayValue)
        #expect(Set(sockets.compactMap { $0.objectValue?["id"]?.stringValue }) == [ada.id, foo.id, client.id])
        let described = try #require(sockets.first { $0.objectValue?["id"]?.stringValue == ada.id }?.objectValue)
        #expect(described["rooms"] == [.string(ada.id), "lobby"])
        #expect(described["nsp"] == "/")
        #expect(described["transport"] == "websocket")
        #expect(described["clientId"]?.stringValue?.count == 12)
        #expect(described["handshake"]?.objectValue?["query"]?.objectValue?["EIO"] == "4")

        // The first sample has no earlier one to count events from; the second has.
        // A sample taken while the admin connected may count its connection but not yet its
        // socket (the session opens first): a later one counts both.
        let namespaces: JSONValue = [["name": "/", "socketsCount": 1], ["name": "/admin", "socketsCount": 1], ["name": "/foo", "socketsCount": 1]]
        var stats = try #require(try await client.nextEvent(named: "server_stats").arguments.first?.objectValue)
        for _ in 0..<20 where stats["namespaces"] != namespaces {
            stats = try #require(try await client.nextEvent(named: "server_stats").arguments.first?.objectValue)
        }
        #expect(stats["namespaces"] == namespaces)
        #expect(stats["serverId"] == .string(SocketIOAdminConfiguration.defaultServerID))
        #expect(stats["clientsCount"] == 3)
        #expect(stats["pollingClientsCount"] == 0)
        try await ada.emit("shout", "hello")
        for _ in 0..<50 {
            stats = try #require(try await client.nextEvent(named: "server_stats").arguments.first?.objectValue)
            if stats["aggregatedEvents"]?.arrayValue?.isEmpty == false { break }
        }
        let types = Set(stats["aggregatedEvents"]?.arrayValue?.compactMap { $0.objectValue?["type"]?.stringValue } ?? [])
        #expect(types.isSuperset(of: ["packetsIn", "bytesIn"]), "\(stats)")
    }

    @Test func everyChangeIsReportedLiveInDevelopmentMode() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)
        _ = try await client.nextEvent(named: "all_sockets")
        // Its own socket first: the admin namespace is watched as any other.
        let own = try await client.nextEvent(named: "socket_connected")
        #expect(own.arguments.first?.objectValue?["id"]?.stringValue == client.id)
        let ada = try await SocketIOTestClient.connect(to: io)
        let connected = try await client.nextEvent(named: "socket_connected")
        #expect(connected.arguments.first?.objectValue?["id"]?.stringValue == ada.id)
        #expect(connected.arguments.last?.stringValue?.hasSuffix("Z") == true)
        let bob = try await SocketIOTestClient.connect(to: io)
        _ = try await client.nextEvent(named: "socket_connected")

        try await ada.emit("enter", "lobby")
        #expect(try await client.nextEvent(named: "event_received").arguments.prefix(3) == ["/", .string(ada.id), ["enter", "lobby"]])
        #expect(try await client.nextEvent(named: "room_joined").arguments.prefix(3) == ["/", "lobby", .string(ada.id)])
        try await ada.emit("shout", "hi", 1)
        _ = try await bob.nextEvent(named: "shouted")
        // Sent to Bob, not to Ada (a broadcast but the sender), without the server's offset.
        #expect(try await client.nextEvent(named: "event_sent").arguments.prefix(3) == ["/", .string(bob.id), ["shouted", "hi", 1]])

        // A large event is shown by its name: reported once per recipient, it would otherwise
        // queue its whole size for the UI as many times.
        try await ada.emit("shout", .string(String(repeating: "x", count: 5000)))
        _ = try await bob.nextEvent(named: "shouted")
        _ = try await client.nextEvent(named: "event_received")
        let large = try await client.nextEvent(named: "event_sent")
        #expect(large.arguments[2] == ["shouted", "(arguments over 2048 bytes, not shown)"])

        try await ada.disconnect()
        let gone = try await client.nextEvent(named: "socket_disconnected")
        #expect(gone.arguments.prefix(3) == ["/", .string(ada.id), "client namespace disconnect"])
        // The admin namespace's own traffic (these reports) is not reported as sent: only
        // what went to Ada and Bob was.
        var sentTo: Set<String> = []
        while let event = try? await client.nextEvent(named: "event_sent", timeout: .milliseconds(300)) {
            sentTo.insert(event.arguments.first?.stringValue ?? "?")
        }
        #expect(sentTo.isSubset(of: ["/"]))
    }

    @Test func commandsActOnTheChosenSockets() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        let ada = try await SocketIOTestClient.connect(to: io)
        let bob = try await SocketIOTestClient.connect(to: io)
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)

        try await client.emit("emit", "/", .string(ada.id), "news", ["bar": "baz"], "extra")
        #expect(try await ada.nextEvent(named: "news").arguments == [["bar": "baz"], "extra"])
        // Joining and leaving go through the adapter, in a task: the reports tell when done.
        try await client.emit("join", "/", "room", .string(bob.id))
        #expect(try await client.nextEvent(named: "room_joined").arguments.prefix(3) == ["/", "room", .string(bob.id)])
        try await client.emit("emit", "/", "room", "news", "for the room")
        #expect(try await bob.nextEvent(named: "news").arguments == ["for the room"])
        #expect(try await ada.isQuiet())
        try await client.emit("leave", "/", "room")
        #expect(try await client.nextEvent(named: "room_left").arguments.prefix(3) == ["/", "room", .string(bob.id)])
        try await client.emit("emit", "/", "room", "news", "nobody")
        try await client.emit("emit", "/", nil, "news", "everybody")
        #expect(try await bob.nextEvent(named: "news").arguments == ["everybody"])
        #expect(try await ada.nextEvent(named: "news").arguments == ["everybody"])

        // A namespace that does not exist is not created by a command.
        try await client.emit("emit", "/nowhere", nil, "news")
        try await client.emit("_disconnect", "/", false, .string(ada.id))
        try await bob.emit("shout", "still here")
        _ = try await client.nextEvent(named: "socket_disconnected")
        #expect(!io.namespaces.contains { $0.name == "/nowhere" })
        #expect(await io.sockets.socketCount() == 1)
    }

    /// The worst filter a command can carry: as many rooms as fit in a message at the
    /// default `maxHttpBufferSize`. Chaining `to` once per room copied the growing set each
    /// time (quadratic: minutes here); the rooms now go into the filter at once.
    @Test(.timeLimit(.minutes(1))) func aCommandsFilterOfAHundredThousandRoomsCostsLinearTime() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        let ada = try await SocketIOTestClient.connect(to: io)
        try await ada.emit("enter", "r99999")
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)
        let rooms = JSONValue.array((0..<100_000).map { .string("r\($0)") })
        try await client.emit("emit", "/", rooms, "news", "to a hundred thousand rooms")
        #expect(try await ada.nextEvent(named: "news", timeout: .seconds(50)).arguments == ["to a hundred thousand rooms"])
    }

    @Test func aReadonlyAdminInProductionModeOnlyWatchesTheCounts() async throws {
        let (io, admin) = try server {
            $0.readonly = true
            $0.mode = .production
        }
        defer { admin.stop() }
        let ada = try await SocketIOTestClient.connect(to: io)
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)
        #expect(try await client.nextEvent(named: "config").arguments == [["supportedFeatures": ["AGGREGATED_EVENTS"]]])
        try await client.emit("_disconnect", "/", false, .string(ada.id))
        _ = try await SocketIOTestClient.connect(to: io)
        _ = try await client.nextEvent(named: "server_stats")
        _ = try await client.nextEvent(named: "server_stats")
        #expect(await io.sockets.socketCount() == 2)  // the command was not obeyed
        // Nothing per socket: only statistics came (and the session id, before the config).
        let names = Set(try await (0..<3).asyncMap { _ in try await client.nextEvent().name })
        #expect(names == ["session", "server_stats"])
    }

    @Test func wrongCredentialsAreRefusedAndASessionIdLetsTheAdminBackIn() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        for auth: JSONObject? in [nil, ["username": "admin"], ["username": "admin", "password": "guess"], ["username": "root", "password": "secret"], ["sessionId": "made-up"]] {
            await #expect(throws: SocketIOConnectError.self, "\(String(describing: auth))") {
                _ = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: auth)
            }
        }
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)
        let session = try #require(try await client.nextEvent(named: "session").arguments.first)
        let again = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: ["sessionId": session])
        _ = try await again.nextEvent(named: "config")
    }

    /// Reports per socket and per event are made only while an admin UI watches: a server
    /// with the admin UI on and nobody looking decodes and reports nothing per message.
    @Test func nothingIsReportedWhileNobodyWatches() async throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        #expect(!admin.wantsSentEvents(on: io.sockets))
        let client = try await SocketIOTestClient.connect(to: io, namespace: "/admin", auth: Self.credentials)
        #expect(admin.wantsSentEvents(on: io.sockets))
        #expect(!admin.wantsSentEvents(on: try #require(io.namespaces.first { $0.name == "/admin" })))
        try await client.disconnect()
        for _ in 0..<500 where admin.wantsSentEvents(on: io.sockets) { try await Task.sleep(for: .milliseconds(10)) }
        #expect(!admin.wantsSentEvents(on: io.sockets))
    }

    @Test func anotherNodesAdminIsHeardOfForAWhile() {
        let audience = AdminAudience()
        #expect(!audience.isWatched)
        audience.watchedElsewhere(for: .zero)
        #expect(!audience.isWatched)
        audience.watchedElsewhere(for: .hours(1))
        #expect(audience.isWatched && !audience.watchingHere)
        audience.watchedElsewhere(for: .zero)  // an earlier deadline does not shorten a later one
        #expect(audience.isWatched)
        let local = AdminAudience()
        local.joined()
        #expect(local.isWatched && local.watchingHere)
        local.left()
        #expect(!local.isWatched)
    }

    @Test func oneInstrumentPerServer() throws {
        let (io, admin) = try server()
        defer { admin.stop() }
        #expect(throws: SocketIOAdmin.AlreadyInstrumented.self) {
            try SocketIOAdmin(server: io, configuration: .init(credentials: nil)).start()
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var values: [T] = []
        for element in self { values.append(try await transform(element)) }
        return values
    }
}
