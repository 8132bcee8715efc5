import FrameworkHost
import EngineIO
import Foundation
import NIOCore

/// The server the official engine.io-protocol test suite expects: /engine.io/ on port 3000 (or `PORT`),
/// pingInterval 300 ms, pingTimeout 200 ms, maxPayload 1,000,000, any origin, and every
/// message echoed back to its sender as it came (text as text, binary as binary).
final class EchoDelegate: EngineIOServerDelegate {
    func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler {
        Echo()
    }
}

final class Echo: EngineIOSessionHandler {
    func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) {
        session.send(message)
    }

    func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) {}
}

var configuration = EngineIOConfiguration()
configuration.pingInterval = .milliseconds(Int64(ProcessInfo.processInfo.environment["PING_INTERVAL"] ?? "300") ?? 300)
configuration.pingTimeout = .milliseconds(Int64(ProcessInfo.processInfo.environment["PING_TIMEOUT"] ?? "200") ?? 200)
configuration.maxHttpBufferSize = Int(ProcessInfo.processInfo.environment["MAX_HTTP_BUFFER_SIZE"] ?? "") ?? 1_000_000
configuration.cors = .anyOrigin
// The official suite talks to /engine.io/, the reference server's default path.
configuration.path = ProcessInfo.processInfo.environment["ENGINEIO_PATH"] ?? "/engine.io/"

let port = Int(ProcessInfo.processInfo.environment["PORT"] ?? "") ?? 3000
let server = EngineIOServer(configuration: configuration, delegate: EchoDelegate())
// `--framework nio|hummingbird` (or FRAMEWORK): the engine's own listener, or mounted in a framework.
try await FrameworkHost.fromCommandLine().serve(
    server, host: ProcessInfo.processInfo.environment["HOST"] ?? "127.0.0.1", port: port, name: "eio-conformance"
)
