import ArgumentParser
import Histogram
import NIOCore
import NIOPosix

/// What a polling request costs when it lands on a node that does not hold its session: a
/// session opened on `--port`, then the same POST (a `6`, which the session ignores) sent in
/// turns to that node and to `--other-port`, which forwards it; the round trip of each, timed.
struct ForwardLatency: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "forward-latency")

    @OptionGroup var target: Target
    @Option(help: "A node of the same cluster that does not hold the session.") var otherPort: Int
    @Option(help: "Requests to each node.") var requests = 2000

    func run() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sid = try await SimpleHTTPClient.pollingHandshake(host: target.host, port: target.port, path: target.path, group: group).get()
        let own = try await SimpleHTTPClient.connect(host: target.host, port: target.port, group: group).get()
        let other = try await SimpleHTTPClient.connect(host: target.host, port: otherPort, group: group).get()
        let uri = target.path + "?EIO=4&transport=polling&sid=\(sid)"
        var direct = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var forwarded = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        var failures = 0
        for round in 0..<(requests * 2) {
            let client = round % 2 == 0 ? own : other
            let started = Load.now()
            let (status, body) = try await client.request(.POST, uri, body: "6").get()
            let micros = (Load.now() - started) / 1000
            if status != .ok || body != "ok" { failures += 1 }
            if round % 2 == 0 { direct.record(micros) } else { forwarded.record(micros) }
        }
        own.close()
        other.close()
        func ms(_ histogram: Histogram<UInt64>, _ percentile: Double) -> Double { Double(histogram.valueAtPercentile(percentile)) / 1000 }
        print(
            json([
                "scenario": "forward_latency", "server": target.label, "requests": requests, "failures": failures,
                "direct_p50_ms": ms(direct, 50), "direct_p99_ms": ms(direct, 99),
                "forwarded_p50_ms": ms(forwarded, 50), "forwarded_p99_ms": ms(forwarded, 99),
                "extra_p50_ms": ms(forwarded, 50) - ms(direct, 50), "extra_p99_ms": ms(forwarded, 99) - ms(direct, 99),
            ])
        )
        try await group.shutdownGracefully()
    }
}
