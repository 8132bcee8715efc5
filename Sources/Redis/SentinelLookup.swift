import NIOCore

/// Asks Redis Sentinel where the primary is, as the sentinel clients' guidelines describe:
/// the sentinels in turn (from the one that answered last), `SENTINEL
/// get-master-addr-by-name`, then `ROLE` on the address named, so that a sentinel that has
/// not yet seen a failover cannot send the client to a server that is now a replica.
enum SentinelLookup {
    /// The address of the primary that the first sentinel to answer names under `name`, and
    /// that sentinel's index; the sentinels are tried once each, from `first` on (`tried` of
    /// them so far).
    static func primary(
        named name: String, sentinels: [RedisAddress], from first: Int, group: any EventLoopGroup, timeout: TimeAmount,
        tried: Int = 0
    ) -> EventLoopFuture<(address: RedisAddress, sentinel: Int)> {
        let index = (first + tried) % sentinels.count
        let sentinel = sentinels[index]
        return RedisConnection.connect(host: sentinel.host, port: sentinel.port, group: group, timeout: timeout)
            .flatMap { connection in
                connection.send("SENTINEL", "get-master-addr-by-name", name, timeout: timeout).always { _ in connection.close() }
            }
            .flatMapThrowing { reply -> (address: RedisAddress, sentinel: Int) in
                guard let address = address(fromReply: reply) else { throw RedisError.server("sentinel \(sentinel) does not know \(name)") }
                return (address, index)
            }
            .flatMapError { error in
                guard tried + 1 < sentinels.count else { return group.any().makeFailedFuture(error) }
                return primary(named: name, sentinels: sentinels, from: first, group: group, timeout: timeout, tried: tried + 1)
            }
    }

    /// The address in an answer to `SENTINEL get-master-addr-by-name`: `[host, port]`, or null
    /// for a name the sentinel does not monitor.
    static func address(fromReply reply: RESPValue) -> RedisAddress? {
        guard let parts = reply.array, parts.count == 2, let host = parts[0].string, !host.isEmpty,
            let port = parts[1].string.flatMap({ Int($0) }), (1...65535).contains(port)
        else { return nil }
        return RedisAddress(host: host, port: port)
    }

    /// Fails unless the server on `connection` says it is a primary (`ROLE` answers
    /// `["master", offset, replicas]`).
    static func confirmPrimary(_ connection: RedisConnection, timeout: TimeAmount) -> EventLoopFuture<Void> {
        connection.send("ROLE", timeout: timeout).flatMapThrowing { reply in
            guard isPrimary(roleReply: reply) else { throw RedisError.server("not a primary: \(reply.array?.first?.string ?? "?")") }
        }
    }

    /// Whether an answer to `ROLE` is a primary's.
    static func isPrimary(roleReply reply: RESPValue) -> Bool {
        reply.array?.first?.string == "master"
    }
}
