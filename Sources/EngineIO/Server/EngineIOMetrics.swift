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
    static let packetsIn = Counter(label: "engineio_packets_received_total")
    static let bytesIn = Counter(label: "engineio_bytes_received_total")
    static let packetsOut = Counter(label: "engineio_packets_sent_total")
    static let bytesOut = Counter(label: "engineio_bytes_sent_total")
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
