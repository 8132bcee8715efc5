// EngineIO is imported for its configuration type, which SocketIOConfiguration embeds:
// naming the module keeps incremental builds from linking a stale layout of it.
import FrameworkHost
import EngineIO
import Foundation
import NIOCore
import NIOPosix
import SocketIO
import Redis
import SocketIORedis

// The server the official socket.io-protocol test suite expects: port 3000 (or `PORT`),
// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000, connectTimeout 1000 ms,
// any origin. On `/` it emits `auth` with the handshake's auth, answers `message` with
// `message-back` and `message-with-ack` with an ack, both carrying the same arguments; on
// `/custom` it emits `auth`. With `REDIS_URL`, a node of a cluster of them sharing that Redis,
// which the suite can reach through a balancer without sticky sessions.


var configuration = SocketIOConfiguration()
configuration.engineIO.pingInterval = .milliseconds(300)
configuration.engineIO.pingTimeout = .milliseconds(200)
configuration.engineIO.maxHttpBufferSize = 1_000_000
configuration.engineIO.cors = .anyOrigin
configuration.connectTimeout = .milliseconds(1000)

let cluster = ProcessInfo.processInfo.environment["REDIS_URL"].flatMap(RedisEndpoint.init(url:)).map {
    RedisCluster(configuration: RedisCluster.Configuration(endpoint: $0), group: MultiThreadedEventLoopGroup.singleton)
}
if let cluster {
    configuration.adapter = cluster.makeAdapter
    configuration.engineIO.cluster = cluster
}

let io = SocketIOServer(configuration: configuration)

// The suite reads the CONNECT answer, then attaches its listener for `auth`. Node's `ws`
// dispatches every frame of one read at once, so an `auth` that arrives in the same read
// as the CONNECT answer is dispatched before that listener exists, and lost. The reference
// server sends it a write later (engine.io holds packets back until the previous write's
// callback). A millisecond was not enough with the suite starved of CPU (a busy second
// core: 2 of 17 runs lost the `auth` of "connection to a custom namespace", the client
// reading both frames at once); 50 ms is, and stays far inside the 300 ms before the ping.
let authDelay = TimeAmount.milliseconds(50)

io.sockets.onConnection { socket in
    socket.eventLoop.scheduleTask(in: authDelay) { socket.emit("auth", .object(socket.handshake.auth)) }
    socket.on("message") { event in
        socket.emit("message-back", arguments: event.arguments)
    }
    socket.on("message-with-ack") { event in
        event.ack?.send(event.arguments)
    }
}

io.of("/custom").onConnection { socket in
    socket.eventLoop.scheduleTask(in: authDelay) { socket.emit("auth", .object(socket.handshake.auth)) }
}

cluster?.start()
try await cluster?.ready.get()

let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 3000
// `--framework nio|hummingbird` (or FRAMEWORK): the engine's own listener, or mounted in a framework.
try await FrameworkHost.fromCommandLine().serve(
    io.engine, host: ProcessInfo.processInfo.environment["HOST"] ?? "127.0.0.1", port: port, name: "sio-conformance"
)
