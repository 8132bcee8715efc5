import SocketIO

/// Turns samples of the server's counters into the `aggregatedEvents` of `server_stats`:
/// what happened since the previous sample, as the reference's event buffer reports it.
struct AdminStatistics {
    private var previous: SocketIOServerStatistics?

    /// The events between the previous sample and `sample`, stamped `timestamp`
    /// (milliseconds, on a whole second as the reference's); none for the first sample.
    mutating func aggregatedEvents(_ sample: SocketIOServerStatistics, timestamp: Int64) -> [JSONValue] {
        defer { previous = sample }
        guard let previous else { return [] }
        let counts: [(String, Int)] = [
            ("rawConnection", sample.clientsOpened - previous.clientsOpened),
            ("rawDisconnection", sample.clientsClosed - previous.clientsClosed),
            ("packetsIn", sample.packetsIn - previous.packetsIn),
            ("packetsOut", sample.packetsOut - previous.packetsOut),
            ("bytesIn", sample.bytesIn - previous.bytesIn),
            ("bytesOut", sample.bytesOut - previous.bytesOut),
        ]
        let second = timestamp - timestamp % 1000
        return counts.filter { $0.1 > 0 }.map { type, count in
            ["timestamp": .number(Double(second)), "type": .string(type), "count": .number(Double(count))]
        }
    }
}
