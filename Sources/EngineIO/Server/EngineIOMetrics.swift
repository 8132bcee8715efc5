import Atomics
import Metrics

/// What the Engine.IO layer reports through swift-metrics (a no-op until the application
/// bootstraps a backend, as chat-server does with Prometheus). Handles are made once.
enum EngineIOMetrics {
    static let sessionsOpened = (
        polling: Counter(label: "engineio_sessions_opened_total", dimensions: [("transport", "polling")]),
        websocket: Counter(label: "engineio_sessions_opened_total", dimensions: [("transport", "websocket")])
    )
    static let sessionsOpen = (
        polling: Meter(label: "engineio_sessions_open", dimensions: [("transport", "polling")]),
        websocket: Meter(label: "engineio_sessions_open", dimensions: [("transport", "websocket")])
    )

    static func opened(_ transport: EngineIOTransportKind) {
        switch transport {
        case .polling:
            sessionsOpened.polling.increment()
            sessionsOpen.polling.increment()
        case .websocket:
            sessionsOpened.websocket.increment()
            sessionsOpen.websocket.increment()
        }
    }

    static func upgraded() {
        upgrades.increment()
        sessionsOpen.polling.decrement()
        sessionsOpen.websocket.increment()
    }
    static let upgrades = Counter(label: "engineio_upgrades_total")
    static let packetsIn = TrafficCounter(label: "engineio_packets_received_total", total: EngineIOTraffic.packetsIn)
    static let bytesIn = TrafficCounter(label: "engineio_bytes_received_total", total: EngineIOTraffic.bytesIn)
    static let packetsOut = TrafficCounter(label: "engineio_packets_sent_total", total: EngineIOTraffic.packetsOut)
    static let bytesOut = TrafficCounter(label: "engineio_bytes_sent_total", total: EngineIOTraffic.bytesOut)
    /// permessage-deflate: packets compressed (once per event loop a broadcast reaches, not
    /// per recipient), and client messages inflated.
    static let messagesDeflated = Counter(label: "engineio_websocket_messages_deflated_total")
    static let messagesInflated = Counter(label: "engineio_websocket_messages_inflated_total")
    static let slowConsumersDropped = Counter(label: "engineio_slow_consumers_dropped_total")
    static let refusedAtCapacity = Counter(label: "engineio_handshakes_refused_at_capacity_total")
    static let refusedHost = Counter(label: "engineio_requests_refused_host_total")

    static func closed(_ reason: EngineIOCloseReason, transport: EngineIOTransportKind) {
        switch transport {
        case .polling: sessionsOpen.polling.decrement()
        case .websocket: sessionsOpen.websocket.decrement()
        }
        Counter(label: "engineio_sessions_closed_total", dimensions: [("reason", reason.rawValue)]).increment()
    }
}

/// A swift-metrics counter that also adds to one of `EngineIOTraffic`'s totals, which the
/// process reads back (`EngineIOServer.statistics`) whether or not a metrics backend is
/// bootstrapped. Counted where the metrics were: once per flush or request, not per byte.
struct TrafficCounter: Sendable {
    let counter: Counter
    let total: ManagedAtomic<Int>

    init(label: String, total: ManagedAtomic<Int>) {
        self.counter = Counter(label: label)
        self.total = total
    }

    func increment(by amount: Int64 = 1) {
        counter.increment(by: amount)
        total.wrappingIncrement(by: Int(amount), ordering: .relaxed)
    }
}

/// Packets and bytes through every Engine.IO transport of the process since it started.
public struct EngineIOTraffic: Sendable, Hashable {
    /// Engine.IO packets received.
    public var packetsIn = 0
    /// Engine.IO packets sent.
    public var packetsOut = 0
    /// Bytes received: polling bodies and WebSocket messages.
    public var bytesIn = 0
    /// Bytes sent: polling bodies and WebSocket frames.
    public var bytesOut = 0

    /// No traffic.
    public init() {}

    static let packetsIn = ManagedAtomic(0)
    static let packetsOut = ManagedAtomic(0)
    static let bytesIn = ManagedAtomic(0)
    static let bytesOut = ManagedAtomic(0)

    /// The totals now (each read on its own: a sample, not a snapshot of one instant).
    static var total: EngineIOTraffic {
        var traffic = EngineIOTraffic()
        traffic.packetsIn = packetsIn.load(ordering: .relaxed)
        traffic.packetsOut = packetsOut.load(ordering: .relaxed)
        traffic.bytesIn = bytesIn.load(ordering: .relaxed)
        traffic.bytesOut = bytesOut.load(ordering: .relaxed)
        return traffic
    }
}

/// What `EngineIOServer.statistics` samples.
public struct EngineIOStatistics: Sendable, Hashable {
    /// Sessions open now.
    public var sessions: Int
    /// Of those, the ones still on long-polling (not upgraded).
    public var pollingSessions: Int
    /// Sessions this server opened since it started.
    public var sessionsOpened: Int
    /// Sessions this server closed since it started.
    public var sessionsClosed: Int
    /// The process's Engine.IO traffic since it started (every server of the process).
    public var traffic = EngineIOTraffic()

    /// A sample with these counts and no traffic.
    public init(sessions: Int, pollingSessions: Int, sessionsOpened: Int, sessionsClosed: Int) {
        self.sessions = sessions
        self.pollingSessions = pollingSessions
        self.sessionsOpened = sessionsOpened
        self.sessionsClosed = sessionsClosed
    }
}
