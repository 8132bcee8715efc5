#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import EngineIO
import FrameworkHost
import Foundation
import HTTPCommon
import NIOCore
import NIOHTTP1
import NIOPosix
import Redis
import SocketIO
import SocketIORedis

// A Socket.IO server that exercises the whole server API, driven by the interop tests
// (python-socketio, and the JavaScript client in Chromium). Connection-state recovery is
// on; RECOVERY_MS sets maxDisconnectionDuration, RECOVERY_MAX_PACKETS the buffer's size. Files under STATIC_DIR are served at `/`
// for the browser tests.


var configuration = SocketIOConfiguration()
configuration.engineIO.pingInterval = .milliseconds(Int64(ProcessInfo.processInfo.environment["PING_INTERVAL"] ?? "") ?? 25_000)
configuration.engineIO.pingTimeout = .milliseconds(Int64(ProcessInfo.processInfo.environment["PING_TIMEOUT"] ?? "") ?? 20_000)
configuration.engineIO.maxOutboundBytes = Int(ProcessInfo.processInfo.environment["MAX_OUTBOUND_BYTES"] ?? "") ?? configuration.engineIO.maxOutboundBytes
configuration.engineIO.slowConsumerTimeout = .milliseconds(Int64(ProcessInfo.processInfo.environment["SLOW_CONSUMER_TIMEOUT_MS"] ?? "") ?? 10_000)
configuration.engineIO.requestHeadTimeout = .milliseconds(Int64(ProcessInfo.processInfo.environment["REQUEST_TIMEOUT_MS"] ?? "") ?? 30_000)
var recovery = ConnectionStateRecovery()
recovery.maxDisconnectionDuration = .milliseconds(Int64(ProcessInfo.processInfo.environment["RECOVERY_MS"] ?? "") ?? 120_000)
recovery.maxBufferedPackets = Int(ProcessInfo.processInfo.environment["RECOVERY_MAX_PACKETS"] ?? "") ?? recovery.maxBufferedPackets
configuration.connectionStateRecovery = recovery

// REDIS_URL: a node of a cluster of testbeds sharing that Redis.
let cluster = ProcessInfo.processInfo.environment["REDIS_URL"].flatMap(RedisEndpoint.init(url:)).map {
    RedisCluster(configuration: RedisCluster.Configuration(endpoint: $0), group: MultiThreadedEventLoopGroup.singleton)
}
if let cluster {
    configuration.adapter = cluster.makeAdapter
    configuration.engineIO.cluster = cluster  // any node serves any session's requests
}

/// Serves the files of one folder, for the browser tests.
struct StaticFiles: HTTPFallbackResponder {
    let directory: String?

    func respond(to head: HTTPRequestHead, body: ByteBuffer, on eventLoop: any EventLoop) -> EventLoopFuture<HTTPResponse> {
        let path = head.uri.split(separator: "?").first.map(String.init) ?? "/"
        guard let directory, !path.contains(".."), let file = fopen(directory + (path == "/" ? "/index.html" : path), "rb") else {
            return eventLoop.makeSucceededFuture(HTTPResponse(status: .notFound))
        }
        defer { fclose(file) }
        var bytes = ByteBuffer()
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = fread(&chunk, 1, chunk.count, file)
            if count <= 0 { break }
            bytes.writeBytes(chunk[0..<count])
        }
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: path.hasSuffix(".js") ? "text/javascript" : "text/html; charset=utf-8")
        return eventLoop.makeSucceededFuture(HTTPResponse(status: .ok, headers: headers, body: bytes))
    }
}

let io = SocketIOServer(configuration: configuration, fallback: StaticFiles(directory: ProcessInfo.processInfo.environment["STATIC_DIR"]))

io.sockets.onConnection { socket in
    socket.on("echo") { event in
        if let ack = event.ack {
            ack.send(event.arguments)
        } else {
            socket.emit("echo", arguments: event.arguments)
        }
    }
    socket.on("whoami") { event in
        let rooms = socket.rooms.sorted().map { JSONValue.string($0) }
        event.ack?(["id": .string(socket.id), "recovered": .bool(socket.recovered), "rooms": .array(rooms), "data": socket.data, "auth": .object(socket.handshake.auth)])
    }
    socket.on("set data") { event in
        socket.data = event.arguments.first ?? .null
        event.ack?()
    }
    socket.on("join") { event in
        if let room = event.arguments.first?.stringValue { socket.join(room) }
        event.ack?()
    }
    socket.on("leave") { event in
        if let room = event.arguments.first?.stringValue { socket.leave(room) }
        event.ack?()
    }
    socket.on("to room") { event in
        guard let room = event.arguments.first?.stringValue else { return }
        socket.to(room).emit("room message", arguments: Array(event.arguments.dropFirst()))
        event.ack?()
    }
    socket.on("except room") { event in
        guard let room = event.arguments.first?.stringValue else { return }
        io.sockets.except(room).emit("except message", arguments: Array(event.arguments.dropFirst()))
        event.ack?()
    }
    socket.on("broadcast") { event in
        socket.broadcast.emit("broadcast", arguments: event.arguments)
        event.ack?()
    }
    socket.on("emit all") { event in
        io.sockets.emit("all", arguments: event.arguments)
        event.ack?()
    }
    socket.on("volatile all") { event in
        io.sockets.volatile.emit("volatile", arguments: event.arguments)
        event.ack?()
    }
    socket.on("ask") { event in
        // The server asks the client, with an ack, and reports what came back.
        socket.emit("question", arguments: event.arguments, timeout: .seconds(2)) { result in
            switch result {
            case .success(let answer): socket.emit("answer", arguments: answer)
            case .failure(let error): socket.emit("answer error", .string("\(error)"))
            }
        }
    }
    socket.on("disconnect me") { event in
        socket.disconnect(close: event.arguments.first == .bool(true))
    }
    socket.on("socket count") { event in
        // How many sockets the main namespace has: lets a test see the server drop one.
        Task { event.ack?(.number(Double(await io.sockets.socketCount()))) }
    }
    socket.on("fetch sockets") { event in
        // Every socket of the cluster in the room given (all without one): [{id, rooms}].
        let room = event.arguments.first?.stringValue
        Task {
            let target = room.map { io.sockets.to($0) } ?? io.sockets.broadcastOperator
            let sockets = (try? await target.fetchSockets()) ?? []
            event.ack?(.array(sockets.map { ["id": .string($0.id), "rooms": .array($0.rooms.sorted().map(JSONValue.string))] }))
        }
    }
    socket.on("sockets join") { event in
        // Makes the sockets of room `arguments[1]` (everyone without it) join `arguments[0]`.
        guard let room = event.arguments.first?.stringValue else { return }
        let target = event.arguments.dropFirst().first?.stringValue.map { io.sockets.to($0) } ?? io.sockets.broadcastOperator
        Task {
            try? await target.socketsJoin(room)
            event.ack?()
        }
    }
    socket.on("ask the nodes") { event in
        // serverSideEmitWithAck("ping", arguments): the other nodes' answers.
        Task {
            do {
                event.ack?(.array(try await io.sockets.serverSideEmitWithAck("ping", event.arguments).map(JSONValue.array)))
            } catch {
                event.ack?(["error": .string("\(error)")])
            }
        }
    }
    socket.on("ask everyone") { event in
        // A broadcast with acks to every client of the cluster: {responses, complete}.
        Task {
            let acks = await io.sockets.broadcastOperator.emitWithAck("question", arguments: event.arguments, timeout: .seconds(5))
            event.ack?(["responses": .array(acks.responses.map(JSONValue.array)), "complete": .bool(acks.isComplete)])
        }
    }
    socket.on("node count") { event in
        Task { event.ack?(.number(Double((try? await cluster?.refreshNodeCount().get()) ?? 1))) }
    }
    socket.on("cut me") { _ in
        // Drops the transport without a Socket.IO DISCONNECT: a recoverable loss of link.
        socket.dropConnection()
    }
}

io.sockets.onServerSideEmitWithAck("ping") { arguments in
    [.string("pong from \(ProcessInfo.processInfo.environment["PORT"] ?? "?")")] + arguments
}

io.of("/custom").onConnection { socket in
    socket.emit("auth", .object(socket.handshake.auth))
    socket.on("echo") { event in event.ack?.send(event.arguments) }
}

io.of("/private").use { socket in
    guard socket.handshake.auth["token"] == "secret" else {
        throw SocketIOConnectError("not authorized", data: ["code": 401])
    }
}
io.of("/private").onConnection { socket in
    socket.emit("welcome", "private")
}

cluster?.start()
try await cluster?.ready.get()  // counted by the others before it takes clients
let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 3000
// `--framework nio|hummingbird` (or FRAMEWORK): the engine's own listener, or mounted in a framework.
try await FrameworkHost.fromCommandLine().serve(
    io.engine, host: ProcessInfo.processInfo.environment["HOST"] ?? "127.0.0.1", port: port, name: "socketio-testbed",
    files: ProcessInfo.processInfo.environment["STATIC_DIR"]
)
