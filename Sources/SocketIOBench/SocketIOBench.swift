import ArgumentParser
import Histogram
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// A load generator for any Socket.IO v4 server that runs the chat's `chat message` event.
/// Each scenario prints one JSON line.
@main
struct SocketIOBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "socketio-bench",
        abstract: "Load generator for Socket.IO v4 chat servers; prints one JSON line per scenario.",
        subcommands: [Idle.self, Fanout.self, Burst.self, Chat.self, Storm.self, Hostile.self, ForwardLatency.self]
    )
}

struct Target: ParsableArguments {
    @Option(help: "Server host.") var host = "127.0.0.1"
    @Option(help: "Server port.") var port = 3000
    @Option(help: "Socket.IO path.") var path = "/socket.io/"
    @Option(help: "Server process id, for CPU and memory figures.") var serverPid: Int32?
    @Option(help: "A label for the server in the output.") var label = "server"
    @Option(help: "Connections opened at once while connecting.") var connectConcurrency = 200
    @Option(help: "Comma-separated loopback source addresses to spread connections over.") var sources = ""
    @Option(help: "More ports, comma-separated: clients are spread over --port and these in turn (the nodes of a cluster).")
    var morePorts = ""
    @Option(help: "More process ids, comma-separated, whose CPU and memory count with --server-pid's (a cluster's other nodes, Redis).")
    var morePids = ""

    @Option(help: "Every client but the first (the sender) on this port; the sender on --port.") var receiversPort: Int?
    @Flag(help: "Offer permessage-deflate in the WebSocket upgrade, as browsers do (idle: what the agreement costs).")
    var offerPerMessageDeflate = false

    /// The port of client `index`.
    func port(for index: Int) -> Int {
        if let receiversPort, index > 0 { return receiversPort }
        let ports = [port] + morePorts.split(separator: ",").compactMap { Int($0) }
        return ports[index % ports.count]
    }

    /// CPU and memory of the server's processes, summed.
    var stats: ProcessStats? {
        serverPid.map { ProcessStats(pids: [$0] + morePids.split(separator: ",").compactMap { Int32($0) }) }
    }
}

/// Connects `count` clients, `concurrency` at a time; returns the seconds it took.
///
/// With `upgrading`, each opens its session over polling and upgrades it (the official
/// clients' default), instead of opening it over WebSocket.
func connectAll(_ load: Load, target: Target, count: Int, group: any EventLoopGroup, upgrading: Bool = false) async throws -> Double {
    let started = Load.now()
    let promise = load.loop.makePromise(of: Void.self)
    let sources = target.sources.split(separator: ",").map(String.init)
    try await load.loop.submit {
        load.expectedConnections = load.connected + count
        load.connectPromise = promise
        let base = load.clients.count
        for index in base..<(base + count) {
            // A serverOffset far ahead: the chat replays no history to benchmark clients.
            load.clients.append(BenchClient(index: index, auth: #"{"username":"bench\#(index)","serverOffset":"999999999999"}"#, delegate: load))
        }
    }.get()
    let newClients = try await load.loop.submit { Array(load.clients.suffix(count)) }.get()
    var next = 0
    var inFlight: [EventLoopFuture<any Channel>] = []
    while next < count {
        let client = newClients[next]
        let source = sources.isEmpty ? nil : sources[next % sources.count]
        let port = target.port(for: client.index)
        if upgrading {
            let sid = SimpleHTTPClient.pollingHandshake(host: target.host, port: port, path: target.path, group: group)
            inFlight.append(
                sid.flatMap { sid in
                    load.loop.submit { client.upgradeSid = sid }.flatMap {
                        BenchClient.connect(
                            host: target.host, port: port, path: target.path, client: client, group: group, localAddress: source,
                            offerDeflate: target.offerPerMessageDeflate
                        )
                    }
                }
            )
        } else {
            inFlight.append(
                BenchClient.connect(
                            host: target.host, port: port, path: target.path, client: client, group: group, localAddress: source,
                            offerDeflate: target.offerPerMessageDeflate
                        )
            )
        }
        next += 1
        if inFlight.count >= target.connectConcurrency {
            for future in inFlight {
                do { _ = try await future.get() } catch { FileHandleStderr.write("connect failed: \(error)\n") }
            }
            inFlight.removeAll()
        }
    }
    for future in inFlight {
        do { _ = try await future.get() } catch { FileHandleStderr.write("connect failed: \(error)\n") }
    }
    try await promise.futureResult.get()
    return Double(Load.now() - started) / 1e9
}

/// A one-thread generator with `senders` then `receivers` clients connected: senders are
/// clients 0..<senders, so that a sender's client index is its sender number. Receivers
/// poll instead with `polling`, or open their sessions over polling and upgrade them with
/// `upgrading`; senders are always on WebSocket.
func startLoad(
    target: Target, receivers: Int, senders: Int, polling: Bool = false, upgrading: Bool = false
) async throws -> (MultiThreadedEventLoopGroup, Load) {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let load = Load(loop: group.next())
    try await load.loop.submit { load.prepare(receivers: receivers, senders: senders) }.get()
    if upgrading {
        _ = try await connectAll(load, target: target, count: senders, group: group)
        _ = try await connectAll(load, target: target, count: receivers, group: group, upgrading: true)
        return (group, load)
    }
    guard polling else {
        _ = try await connectAll(load, target: target, count: senders + receivers, group: group)
        return (group, load)
    }
    _ = try await connectAll(load, target: target, count: senders, group: group)
    let promise = load.loop.makePromise(of: Void.self)
    let pollers = try await load.loop.submit { () -> [PollingBenchClient] in
        load.expectedConnections = load.connected + receivers
        load.connectPromise = promise
        load.pollers = (senders..<(senders + receivers)).map { index in
            PollingBenchClient(
                index: index, auth: #"{"username":"bench\#(index)","serverOffset":"999999999999"}"#,
                host: target.host, port: target.port(for: index), path: target.path, delegate: load
            )
        }
        return load.pollers
    }.get()
    for batch in stride(from: 0, to: pollers.count, by: target.connectConcurrency) {
        for poller in pollers[batch..<min(batch + target.connectConcurrency, pollers.count)].map({ $0.start(group: group, on: load.loop) }) {
            do { try await poller.get() } catch { FileHandleStderr.write("connect failed: \(error)\n") }
        }
    }
    try await promise.futureResult.get()
    return (group, load)
}

func json(_ pairs: KeyValuePairs<String, Any?>) -> String {
    var parts: [String] = []
    for (key, value) in pairs {
        let rendered: String
        switch value {
        case let value as String: rendered = "\"\(value)\""
        case let value as Double: rendered = value.isFinite ? String(format2(value)) : "null"
        case let value as Int: rendered = String(value)
        case let value as UInt64: rendered = String(value)
        case let value as Bool: rendered = value ? "true" : "false"
        default: rendered = "null"
        }
        parts.append("\"\(key)\":\(rendered)")
    }
    return "{" + parts.joined(separator: ",") + "}"
}

func format2(_ value: Double) -> String {
    let scaled = (value * 1000).rounded() / 1000
    return String(scaled)
}

func sleepSeconds(_ seconds: Double) async throws {
    try await Task.sleep(nanoseconds: UInt64(seconds * 1e9))
}

/// Idle connections: connect rate, and the server's memory per connection, both over all
/// of them and at the margin (past a first tenth, which also pays the server's one-off
/// costs of its first clients: worker threads, allocator arenas, tables growing).
struct Idle: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Connections.") var connections = 1000
    @Option(help: "Seconds to hold them (long enough for heartbeats).") var hold = 10.0

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let load = Load(loop: group.next())
        let stats = target.stats
        let rssBefore = stats?.residentBytes()
        let firstTenth = max(1, connections / 10)
        var connectSeconds = try await connectAll(load, target: target, count: firstTenth, group: group)
        try await sleepSeconds(1)
        let rssAfterFirstTenth = stats?.residentBytes()
        connectSeconds += try await connectAll(load, target: target, count: connections - firstTenth, group: group)
        try await sleepSeconds(hold)
        let (alive, closed) = try await load.loop.submit { (load.clients.filter(\.isConnected).count, load.closed) }.get()
        let rssAfter = stats?.residentBytes()
        let perConnection = rssBefore.flatMap { before in rssAfter.map { Double($0 - before) / Double(connections) } }
        let marginal = rssAfterFirstTenth.flatMap { mid in
            rssAfter.map { Double(Int($0) - Int(mid)) / Double(max(1, connections - firstTenth)) }
        }
        print(
            json([
                "scenario": "idle", "server": target.label, "connections": connections,
                "connect_seconds": connectSeconds, "connects_per_second": Double(connections) / connectSeconds,
                "held_seconds": hold, "alive_after_hold": alive, "closed": closed,
                "server_rss_before_mib": rssBefore.map { Double($0) / 1_048_576 }, "server_rss_after_mib": rssAfter.map { Double($0) / 1_048_576 },
                "server_rss_per_connection_kib": perConnection.map { $0 / 1024 },
                "server_rss_marginal_per_connection_kib": marginal.map { $0 / 1024 },
            ])
        )
        try await group.shutdownGracefully()
    }
}

/// Broadcast fan-out: receivers, senders at a total rate, latency, losses, server CPU.
struct Fanout: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Receiving connections.") var receivers = 200
    @Option(help: "Sending connections.") var senders = 1
    @Option(help: "Messages per second, all senders together.") var rate = 100.0
    @Option(help: "Seconds of warm-up before measuring.") var warmup = 3.0
    @Option(help: "Seconds measured.") var duration = 10.0
    @Option(help: "The receivers' transport: websocket, polling, or upgrade (polling, then WebSocket; senders use WebSocket).")
    var transport = "websocket"

    func validate() throws {
        guard ["websocket", "polling", "upgrade"].contains(transport) else { throw ValidationError("--transport is websocket, polling or upgrade") }
    }

    func run() async throws {
        let (group, load) = try await startLoad(
            target: target, receivers: receivers, senders: senders, polling: transport == "polling", upgrading: transport == "upgrade"
        )
        try await sleepSeconds(1)
        let stats = target.stats

        let started = Load.now()
        let rate = self.rate
        let ticker = load.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(5)) { _ in
            let due = Int(Double(Load.now() - started) / 1e9 * rate) - load.sent
            for n in 0..<max(due, 0) { load.send(from: (load.sent + n) % senders) }
        }
        try await sleepSeconds(warmup)
        let (cpu0, deliveries0) = try await load.loop.submit { () -> (Double?, Int) in
            load.latency.reset()
            return (stats?.cpuSeconds(), load.deliveries)
        }.get()
        let t0 = Load.now()
        try await sleepSeconds(duration)
        let (cpu1, deliveries1) = try await load.loop.submit { (stats?.cpuSeconds(), load.deliveries) }.get()
        let t1 = Load.now()
        ticker.cancel()
        try await sleepSeconds(3)  // drain

        let result = try await load.loop.submit { () -> String in
            let receiverUnique = load.unique[senders...]
            let receiverDuplicates = load.duplicates[senders...]
            let expected = load.acked
            let losses = receiverUnique.map { max(expected - $0, 0) }
            let delivered = deliveries1 - deliveries0
            let seconds = Double(t1 - t0) / 1e9
            let cpu = cpu0.flatMap { c0 in cpu1.map { $0 - c0 } }
            return json([
                "scenario": "fanout", "server": target.label, "transport": transport, "receivers": receivers, "senders": senders, "rate": rate,
                "seconds": seconds, "sent": load.sent, "acked": load.acked, "ack_errors": load.ackErrors,
                "delivered_per_second": Double(delivered) / seconds,
                "latency_p50_ms": Double(load.latency.valueAtPercentile(50)) / 1000,
                "latency_p99_ms": Double(load.latency.valueAtPercentile(99)) / 1000,
                "latency_max_ms": Double(load.latency.max) / 1000,
                "lost_total": losses.reduce(0, +), "receivers_with_loss": losses.filter { $0 > 0 }.count,
                "duplicates_total": receiverDuplicates.reduce(0, +), "out_of_order": load.outOfOrder,
                "server_cpu_seconds": cpu, "server_cpu_ms_per_1000_delivered": cpu.map { $0 * 1000 / Double(delivered) * 1000 },
                "server_rss_mib": stats?.residentBytes().map { Double($0) / 1_048_576 },
            ])
        }.get()
        print(result)
        try await group.shutdownGracefully()
    }
}

/// A fixed number of messages, each to be delivered to every client (its sender too), and
/// the wait until they all are: for counting the server's instructions under callgrind,
/// where a timed window means nothing (the server runs many times slower).
struct Burst: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Receiving connections besides the sender.") var receivers = 20
    @Option(help: "Messages sent.") var messages = 100
    @Option(help: "Messages per second.") var rate = 20.0
    @Option(help: "Seconds to wait for every delivery before giving up.") var timeout = 600.0

    struct Incomplete: Error, CustomStringConvertible {
        let delivered: Int, expected: Int
        var description: String { "\(delivered) of \(expected) deliveries arrived in time" }
    }

    func run() async throws {
        let (group, load) = try await startLoad(target: target, receivers: receivers, senders: 1)
        let expected = messages * (receivers + 1)
        let messages = self.messages
        let done = load.loop.makePromise(of: Void.self)
        let started = Load.now()
        let interval = TimeAmount.nanoseconds(Int64(1e9 / rate))
        let (ticker, deadline) = try await load.loop.submit {
            load.deliveryGoal = (expected, done)
            let ticker = load.loop.scheduleRepeatedTask(initialDelay: .zero, delay: interval) { task in
                if load.sent < messages { load.send(from: 0) } else { task.cancel() }
            }
            let deadline = load.loop.scheduleTask(in: .nanoseconds(Int64(timeout * 1e9))) {
                done.fail(Incomplete(delivered: load.deliveries, expected: expected))
            }
            return (ticker, deadline)
        }.get()
        try await done.futureResult.get()
        ticker.cancel()
        deadline.cancel()
        let result = try await load.loop.submit { () -> String in
            json([
                "scenario": "burst", "server": target.label, "receivers": receivers, "messages": messages,
                "sent": load.sent, "acked": load.acked, "delivered": load.deliveries,
                "seconds": Double(Load.now() - started) / 1e9,
            ])
        }.get()
        print(result)
        try await group.shutdownGracefully()
    }
}

/// The durable path: senders each keep a window of messages in flight; throughput of
/// insert + broadcast + ack, and ack latency.
struct Chat: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Sending connections.") var senders = 50
    @Option(help: "Messages each sender keeps unacknowledged.") var window = 4
    @Option(help: "Receiving connections besides the senders.") var receivers = 1
    @Option(help: "Seconds measured.") var duration = 10.0
    @Option(help: "A label for the store in the output.") var store = "?"

    func run() async throws {
        let (group, load) = try await startLoad(target: target, receivers: receivers, senders: senders)
        let senders = self.senders
        try await sleepSeconds(1)
        let stats = target.stats
        let window = self.window
        let (cpu0, t0) = try await load.loop.submit { (stats?.cpuSeconds(), Load.now()) }.get()
        let ticker = load.loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
            for sender in 0..<senders where load.inFlight[sender] < window {
                for _ in load.inFlight[sender]..<window { load.send(from: sender) }
            }
        }
        try await sleepSeconds(duration)
        ticker.cancel()
        let (acked, cpu1, t1) = try await load.loop.submit { (load.acked, stats?.cpuSeconds(), Load.now()) }.get()
        try await sleepSeconds(2)
        let result = try await load.loop.submit { () -> String in
            let seconds = Double(t1 - t0) / 1e9
            let cpu = cpu0.flatMap { c0 in cpu1.map { $0 - c0 } }
            return json([
                "scenario": "chat", "server": target.label, "store": store, "senders": senders, "window": window,
                "seconds": seconds, "sent": load.sent, "acked": acked, "ack_errors": load.ackErrors,
                "acked_per_second": Double(acked) / seconds,
                "ack_latency_p50_ms": Double(load.ackLatency.valueAtPercentile(50)) / 1000,
                "ack_latency_p99_ms": Double(load.ackLatency.valueAtPercentile(99)) / 1000,
                "ack_latency_max_ms": Double(load.ackLatency.max) / 1000,
                "duplicates_total": load.duplicates.reduce(0, +), "out_of_order": load.outOfOrder,
                "server_cpu_seconds": cpu,
            ])
        }.get()
        print(result)
        try await group.shutdownGracefully()
    }
}

enum FileHandleStderr {
    static func write(_ text: String) {
        _ = text.withCString { Glibc.write(2, $0, strlen($0)) }
    }
}

/// A reconnection storm: every client is cut at once while messages keep coming, then all
/// reconnect at once with their pid, offset and serverOffset. Reports the time until all
/// are back and caught up, how many resumed their session, and missed and duplicate
/// messages.
struct Storm: AsyncParsableCommand {
    @OptionGroup var target: Target
    @Option(help: "Clients cut and reconnected.") var clients = 1000
    @Option(help: "Messages sent before the cut.") var before = 20
    @Option(help: "Messages sent while the clients are away.") var during = 50
    @Option(help: "A node failure instead of cut links: the receivers' node (--receivers-port), SIGKILLed.")
    var killPid: Int32?
    @Option(help: "With --kill-pid: comma-separated ports the receivers come back to, in turn (through no balancer).")
    var reconnectPorts = ""

    func run() async throws {
        let (receivers, before, during) = (self.clients, self.before, self.during)
        let (group, load) = try await startLoad(target: target, receivers: receivers, senders: 1)
        for _ in 0..<before { try await load.loop.submit { load.send(from: 0) }.get() }
        // Every client caught up; before a node failure, also holding a recovery offset (in
        // a cluster the chat's `chat live` event brings it, after the replay).
        let needsOffsets = killPid != nil
        try await waitUntil(load, timeout: 30) {
            load.acked == before && load.unique[1...].allSatisfy { $0 >= before }
                && (!needsOffsets || load.lastOffset[1...].allSatisfy { !$0.isEmpty })
        }

        let stats = target.stats
        let sidsBefore = try await load.loop.submit { load.clients.map { $0.answerField("sid") ?? "" } }.get()
        try await load.loop.submit {
            load.closed = 0
            if let pid = killPid {
                kill(pid, SIGKILL)
            } else {
                for client in load.clients.dropFirst() { client.cut() }
            }
        }.get()
        try await waitUntil(load, timeout: 30) { load.closed >= receivers }
        for _ in 0..<during { try await load.loop.submit { load.send(from: 0) }.get() }
        try await waitUntil(load, timeout: 30) { load.acked == before + during }

        // Everyone back at once, resuming with pid and offset, and serverOffset as a fallback.
        let cpu0 = stats?.cpuSeconds()
        let started = Load.now()
        try await load.loop.submit {
            load.connected = 1
            for client in load.clients.dropFirst() {
                let pid = client.answerField("pid").map { #","pid":"\#($0)""# } ?? ""
                let offset = load.lastOffset[client.index]
                client.auth = #"{"username":"bench\#(client.index)","serverOffset":\#(load.lastID[client.index])\#(pid),"offset":"\#(offset)"}"#
            }
        }.get()
        let clients = try await load.loop.submit { Array(load.clients.dropFirst()) }.get()
        try await reconnect(clients, load: load, group: group)
        try await waitUntil(load, timeout: 60) { load.unique[1...].allSatisfy { $0 >= before + during } }
        let seconds = Double(Load.now() - started) / 1e9
        let cpu1 = stats?.cpuSeconds()
        try await sleepSeconds(1)  // duplicates would arrive by now

        let result = try await load.loop.submit { () -> String in
            let resumed = zip(sidsBefore.dropFirst(), load.clients.dropFirst()).filter { $0 == ($1.answerField("sid") ?? "") }.count
            let missed = load.unique[1...].map { max(before + during - $0, 0) }.reduce(0, +)
            return json([
                "scenario": killPid == nil ? "storm" : "failover", "server": target.label, "clients": receivers, "messages_before": before, "messages_during": during,
                "seconds_until_all_caught_up": seconds, "resumed_sessions": resumed, "reconnected": load.connected - 1,
                "missed_total": missed, "duplicates_total": load.duplicates[1...].reduce(0, +),
                "server_cpu_seconds": cpu0.flatMap { c0 in cpu1.map { $0 - c0 } },
            ])
        }.get()
        print(result)
        try await group.shutdownGracefully()
    }

    /// Where client `index` comes back to: its own node, or after a node failure one of
    /// `reconnectPorts` in turn.
    private func reconnectPort(_ index: Int) -> Int {
        let ports = reconnectPorts.split(separator: ",").compactMap { Int($0) }
        return ports.isEmpty ? target.port(for: index) : ports[index % ports.count]
    }

    private func reconnect(_ clients: [BenchClient], load: Load, group: any EventLoopGroup) async throws {
        let sources = target.sources.split(separator: ",").map(String.init)
        var futures: [EventLoopFuture<any Channel>] = []
        for (n, client) in clients.enumerated() {
            let source = sources.isEmpty ? nil : sources[n % sources.count]
            futures.append(
                BenchClient.connect(host: target.host, port: reconnectPort(client.index), path: target.path, client: client, group: group, localAddress: source)
            )
        }
        for future in futures {
            do { _ = try await future.get() } catch { FileHandleStderr.write("reconnect failed: \(error)\n") }
        }
    }
}

/// Polls `condition` on the load's loop until it holds or `timeout` seconds pass.
func waitUntil(
    _ load: Load, timeout: Double, line: Int = #line, _ condition: @escaping @Sendable () -> Bool
) async throws {
    let deadline = Load.now() + UInt64(timeout * 1e9)
    while try await !load.loop.submit(condition).get() {
        if Load.now() > deadline {
            FileHandleStderr.write("timed out waiting (SocketIOBench.swift:\(line))\n")
            return
        }
        try await sleepSeconds(0.01)
    }
}
