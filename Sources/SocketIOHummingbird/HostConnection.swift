import EngineIO
import HTTPCommon
import NIOConcurrencyHelpers
import NIOCore

/// What a Socket.IO route needs of the connection a request came on, which Hummingbird's
/// request context does not carry: set for each request's task by `SocketIOChannel`.
struct HostConnection: Sendable {
    /// Tells the engine when a held GET's client gives up.
    let watcher: EngineIOHostConnection
    let remoteAddress: SocketAddress?
    /// Set while `SocketIOChannel` asks the router whether a WebSocket may be upgraded:
    /// the route decides in it instead of answering the request.
    let upgrade: UpgradeNegotiation?

    @TaskLocal static var current: HostConnection?
}

/// The WebSocket upgrade of one connection's first request, as the Socket.IO route decided
/// it behind the app's middleware: taken (with the request and its context, for the
/// handshake), or refused with the answer to give instead.
final class UpgradeNegotiation: Sendable {
    enum Outcome: Sendable {
        case accept(EngineIOHostRequest)
        case refuse(HTTPResponse)
    }

    private let outcome = NIOLockedValueBox<Outcome?>(nil)

    func decide(_ value: Outcome) { outcome.withLockedValue { $0 = value } }
    var decided: Outcome? { outcome.withLockedValue { $0 } }
}
