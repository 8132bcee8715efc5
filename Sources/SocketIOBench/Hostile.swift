import ArgumentParser
import NIOCore
import NIOPosix

/// The costliest packets a client can send within the default limits (1,000,000 bytes a
/// message), each as one WebSocket message.
enum HostilePacket: String, CaseIterable {
    case objectKeys = "object-80k-keys"
    case nestedObjectKeys = "object-80k-keys-nested"
    case repeatedKey = "key-repeated-100k"
    case arrayNumbers = "array-150k-numbers"
    case stringEscapes = "string-150k-escapes"
    case longNumber = "number-900k-digits"
    case deepNesting = "nesting-60-deep-x8000"
    case longNamespace = "namespace-1mb"

    /// The packet's Engine.IO message text, at most `budget` bytes.
    func text(budget: Int) -> String {
        switch self {
        case .objectKeys: return #"42["hostile","# + Self.object(budget: budget - 32) + "]"
        case .nestedObjectKeys: return #"42["hostile",{"inner":"# + Self.object(budget: budget - 48) + "}]"
        case .repeatedKey:
            return #"42["hostile",{"# + Array(repeating: #""k":1"#, count: 100_000).joined(separator: ",") + "}]"
        case .arrayNumbers:
            return #"42["hostile",["# + (0..<150_000).map(String.init).joined(separator: ",") + "]]"
        case .stringEscapes:
            return #"42["hostile",""# + String(repeating: #"\u00e9"#, count: 150_000) + #""]"#
        case .longNumber:
            return #"42["hostile","# + String(repeating: "7", count: 900_000) + "]"
        case .deepNesting:
            let element = String(repeating: "[", count: 60) + String(repeating: "]", count: 60)
            return #"42["hostile",["# + Array(repeating: element, count: 8000).joined(separator: ",") + "]]"
        case .longNamespace:
            return "40/" + String(repeating: "n", count: budget - 16) + ","
        }
    }

    /// `{"0":0,"1":1,…}` with keys in base 36, as many distinct keys as fit.
    static func object(budget: Int) -> String {
        var text = "{"
        var key = 0
        while text.utf8.count < budget - 16 {
            if key > 0 { text += "," }
            text += #""\#(String(key, radix: 36))":\#(key % 10)"#
            key += 1
        }
        return text + "}"
    }
}

/// What the attacker and the observers see: ack times, keyed by client and ack id.
final class HostileLoad: BenchClientDelegate, @unchecked Sendable {
    // @unchecked Sendable: created, read and written on `loop` only (one thread).
    let loop: any EventLoop
    var clients: [BenchClient] = []
    var connected = 0
    var connectPromise: EventLoopPromise<Void>?
    var expected = 0
    var closedClients = Set<Int>()
    /// Ack waiters by client index and ack id.
    var waiting: [Int: [Int: EventLoopPromise<Void>]] = [:]
    var nextAckID: [Int: Int] = [:]
    /// The observers' worst ack delay since the last reset, in ns.
    var observerWorst: UInt64 = 0
    var observing = false

    init(loop: any EventLoop) { self.loop = loop }

    func connected(_ client: any BenchConnection) {
        connected += 1
        if connected == expected { connectPromise?.succeed() }
    }

    func received(_ client: any BenchConnection, text: ByteBuffer) {
        // An ACK: 43<id>[…]
        var text = text
        guard text.readString(length: 2) == "43" else { return }
        var id = 0
        while let byte = text.readInteger(as: UInt8.self), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            id = id * 10 + Int(byte - UInt8(ascii: "0"))
        }
        waiting[client.index]?.removeValue(forKey: id)?.succeed()
    }

    func closed(_ client: any BenchConnection) {
        closedClients.insert(client.index)
        for (_, promise) in waiting[client.index] ?? [:] { promise.fail(ChannelError.ioOnClosedChannel) }
        waiting[client.index] = [:]
    }

    /// Sends an event the chat acknowledges at once (a `chat message` without arguments,
    /// refused before the store), and completes when its ack arrives.
    func probe(_ client: BenchClient, after text: String? = nil) -> EventLoopFuture<Void> {
        let id = nextAckID[client.index, default: 0]
        nextAckID[client.index] = id + 1
        let promise = loop.makePromise(of: Void.self)
        waiting[client.index, default: [:]][id] = promise
        // A server that never answers must not hang the run.
        loop.scheduleTask(in: .seconds(30)) {
            self.waiting[client.index]?.removeValue(forKey: id)?.fail(ChannelError.connectTimeout(.seconds(30)))
        }
        if let text { client.send(text) }
        client.send(#"42\#(id)["chat message"]"#)
        return promise.futureResult
    }

    /// Every observer probes every 10 ms; the worst delay is kept.
    func startObserving(_ observers: [BenchClient]) {
        observing = true
        for observer in observers {
            loop.scheduleRepeatedTask(initialDelay: .milliseconds(10), delay: .milliseconds(10)) { task in
                guard self.observing, !self.closedClients.contains(observer.index) else { return task.cancel() }
                let sent = Load.now()
                self.probe(observer).whenSuccess { self.observerWorst = max(self.observerWorst, Load.now() - sent) }
            }
        }
    }
}

/// How long the costliest packet of each kind holds the server. The attacker sends it,
/// then an event the chat acknowledges at once: the ack's delay over a plain probe's is the
/// time the packet held the attacker's event loop (transfer included; the median and the
/// worst of `repeats`). Observers on other
/// connections probe every 10 ms meanwhile: their worst delay is how long it held anyone
/// else, and an observer that was disconnected missed a heartbeat. Run it against a server
/// with a short heartbeat (PING_INTERVAL=1000, PING_TIMEOUT=1000) so that heartbeats fall
/// inside the measurement.
struct Hostile: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Observer connections.") var observers = 8
    @Option(help: "Times each packet is sent (the median and the worst are reported).") var repeats = 5
    @Option(help: "The server's largest message (maxHttpBufferSize).") var maxPayload = 1_000_000

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let load = HostileLoad(loop: group.next())
        let total = observers + 1
        let promise = load.loop.makePromise(of: Void.self)
        let clients = try await load.loop.submit { () -> [BenchClient] in
            load.expected = total
            load.connectPromise = promise
            load.clients = (0..<total).map { BenchClient(index: $0, auth: #"{"username":"hostile\#($0)","serverOffset":"999999999999"}"#, delegate: load) }
            return load.clients
        }.get()
        for client in clients {
            _ = try await BenchClient.connect(host: target.host, port: target.port, path: target.path, client: client, group: group, localAddress: nil).get()
        }
        try await promise.futureResult.get()
        try await load.loop.submit { load.startObserving(Array(clients.dropFirst())) }.get()
        var attacker = clients[0]

        for packet in HostilePacket.allCases {
            let text = packet.text(budget: maxPayload - 16)
            var holds: [UInt64] = []
            var closedByServer = false
            var baseline: UInt64 = .max
            try await load.loop.submit { load.observerWorst = 0 }.get()
            for _ in 0..<repeats {
                let started = Load.now()
                let current = attacker  // the closures below are sent to the load's loop
                try await load.loop.flatSubmit { load.probe(current) }.get()
                baseline = min(baseline, Load.now() - started)
                let sent = Load.now()
                do {
                    try await load.loop.flatSubmit { load.probe(current, after: text) }.get()
                    holds.append(Load.now() - sent)
                } catch {
                    // The server closed the attacker (it refused the packet): a new attacker.
                    closedByServer = true
                    attacker = try await reconnect(attacker, load: load, group: group)
                }
            }
            try await sleepSeconds(0.1)  // the observers' probes in flight come back
            let (observerWorst, disconnected) = try await load.loop.submit {
                (load.observerWorst, load.closedClients.filter { (1...observers).contains($0) }.count)
            }.get()
            // Less the plain probe's round trip: what the packet itself cost.
            let held = holds.map { Double($0 - min(baseline, $0)) / 1e6 }.sorted()
            print(
                json([
                    "scenario": "hostile", "server": target.label, "packet": packet.rawValue, "bytes": text.utf8.count,
                    "hold_ms": held.isEmpty ? nil : held[held.count / 2], "hold_worst_ms": held.last,
                    "closed_by_server": closedByServer,
                    "observer_worst_ms": Double(observerWorst) / 1e6, "observers_disconnected": disconnected,
                ])
            )
        }
        try await load.loop.submit { load.observing = false }.get()
        try await group.shutdownGracefully()
    }

    private func reconnect(_ old: BenchClient, load: HostileLoad, group: any EventLoopGroup) async throws -> BenchClient {
        let promise = load.loop.makePromise(of: Void.self)
        let client = try await load.loop.submit { () -> BenchClient in
            load.expected = load.connected + 1
            load.connectPromise = promise
            let client = BenchClient(index: load.clients.count, auth: #"{"username":"hostile"}"#, delegate: load)
            load.clients.append(client)
            return client
        }.get()
        _ = try await BenchClient.connect(host: target.host, port: target.port, path: target.path, client: client, group: group, localAddress: nil).get()
        try await promise.futureResult.get()
        return client
    }
}
