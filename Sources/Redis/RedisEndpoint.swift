/// Where a Redis server is: `redis://host:port`.
public struct RedisAddress: Sendable, Equatable, CustomStringConvertible {
    /// The host name or address.
    public var host: String
    /// The TCP port.
    public var port: Int

    /// The server at `host:port`.
    public init(host: String, port: Int = 6379) {
        self.host = host
        self.port = port
    }

    /// Parses `redis://host[:port][/]`.
    public init?(url: String) {
        guard url.hasPrefix("redis://") else { return nil }
        self.init(hostAndPort: url.dropFirst("redis://".count).prefix { $0 != "/" }, defaultPort: 6379)
    }

    /// Parses `host[:port]`.
    init?(hostAndPort text: Substring, defaultPort: Int) {
        let parts = text.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard let host = parts.first, !host.isEmpty else { return nil }
        self.host = String(host)
        if parts.count == 2 {
            guard let port = Int(parts[1]), (1...65535).contains(port) else { return nil }
            self.port = port
        } else {
            self.port = defaultPort
        }
    }

    /// `host:port`.
    public var description: String { "\(host):\(port)" }
}

/// How a client finds the Redis it talks to: one server at a fixed address, or the primary
/// that Redis Sentinel names, which moves to a replica when the primary fails.
public enum RedisEndpoint: Sendable, Equatable, CustomStringConvertible {
    /// The server at one address.
    case server(RedisAddress)
    /// The primary the sentinels monitor under `primaryName`; they are asked in turn.
    case sentinel([RedisAddress], primaryName: String)

    /// Parses `redis://host[:port]` (one server), or
    /// `redis-sentinel://host[:port][,host[:port]…]/primary-name` (the sentinels, port 26379 by
    /// default, and the name they monitor the primary under).
    public init?(url: String) {
        if let address = RedisAddress(url: url) {
            self = .server(address)
            return
        }
        guard url.hasPrefix("redis-sentinel://") else { return nil }
        let rest = url.dropFirst("redis-sentinel://".count)
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        let name = rest[rest.index(after: slash)...]
        let hosts = rest[..<slash].split(separator: ",", omittingEmptySubsequences: false)
        let sentinels = hosts.compactMap { RedisAddress(hostAndPort: $0, defaultPort: 26379) }
        guard !name.isEmpty, !name.contains("/"), !sentinels.isEmpty, sentinels.count == hosts.count else { return nil }
        self = .sentinel(sentinels, primaryName: String(name))
    }

    /// The URL form, as `init(url:)` reads it.
    public var description: String {
        switch self {
        case .server(let address): "redis://\(address)"
        case .sentinel(let sentinels, let name): "redis-sentinel://\(sentinels.map(\.description).joined(separator: ","))/\(name)"
        }
    }
}
