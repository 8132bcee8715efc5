/// The host names a server answers to, checked against each request's `Host` header.
///
/// A server that trusts any `Host` is open to DNS rebinding: a page on an attacker's
/// domain, re-pointed at the server's address, becomes "same origin" with it. Naming the
/// hosts closes that. The default, like the reference server, accepts any host.
public struct AllowedHosts: Sendable, Hashable {
    /// Exact names, lowercased, without port.
    private var names: Set<String>
    /// Suffixes from `*.example.com` entries, kept as `.example.com`.
    private var suffixes: [String]

    /// Accepts every request, whatever its `Host`.
    public static let any = AllowedHosts(names: [], suffixes: [])

    /// Whether any host is accepted.
    public var acceptsAny: Bool { names.isEmpty && suffixes.isEmpty }

    private init(names: Set<String>, suffixes: [String]) {
        self.names = names
        self.suffixes = suffixes
    }

    /// Parses a comma-separated list as given on the command line: `example.com`,
    /// `*.example.com` (its subdomains), `[::1]`; `*` or an empty list accepts any host.
    public init(parsing list: String) {
        var names = Set<String>()
        var suffixes: [String] = []
        for entry in list.split(separator: ",") {
            let host = entry.trimmingSpaces().lowercased()
            if host == "*" { self = .any; return }
            if host.hasPrefix("*.") {
                suffixes.append(String(host.dropFirst()))
            } else if !host.isEmpty {
                names.insert(host)
            }
        }
        self.init(names: names, suffixes: suffixes)
    }

    /// Whether a request whose `Host` header is `header` may be served. With a list
    /// configured, a request without `Host` (not valid HTTP/1.1) is refused.
    public func allows(hostHeader header: String?) -> Bool {
        if acceptsAny { return true }
        guard let header else { return false }
        let host = Self.hostname(of: header)
        if names.contains(host) { return true }
        return suffixes.contains { host.hasSuffix($0) }
    }

    /// `Example.com:3000` → `example.com`; `[::1]:3000` → `[::1]`.
    static func hostname(of header: String) -> String {
        let lowered = header.lowercased()
        if lowered.hasPrefix("["), let end = lowered.firstIndex(of: "]") {
            return String(lowered[...end])
        }
        if let colon = lowered.lastIndex(of: ":") { return String(lowered[..<colon]) }
        return lowered
    }
}

extension Substring {
    /// Without leading and trailing spaces: an entry of a comma-separated option.
    func trimmingSpaces() -> Substring {
        var slice = self
        while slice.first == " " { slice = slice.dropFirst() }
        while slice.last == " " { slice = slice.dropLast() }
        return slice
    }
}
