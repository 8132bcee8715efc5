import Foundation

/// Where the MySQL/MariaDB server is, from `DATABASE_URL=mysql://user:pass@host:port/db`.
public struct MySQLConfiguration: Sendable, Equatable {
    public var host: String
    public var port: UInt32
    public var user: String
    public var password: String
    public var database: String
    /// Connections kept open, and threads running their blocking calls.
    public var poolSize = 4
    /// Seconds to wait when connecting, reading or writing before giving up.
    public var timeout: UInt32 = 10

    public init(host: String, port: UInt32 = 3306, user: String, password: String, database: String) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    /// Parses `mysql://user:pass@host:port/db` (user and password percent-encoded).
    public init(url: String) throws {
        guard url.hasPrefix("mysql://") || url.hasPrefix("mariadb://") else { throw MySQLError.badURL("the scheme must be mysql://") }
        let rest = url.split(separator: "://", maxSplits: 1)[1]
        guard let at = rest.lastIndex(of: "@") else { throw MySQLError.badURL("user and host are required") }
        let credentials = rest[..<at]
        let location = rest[rest.index(after: at)...]
        let userPassword = credentials.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        let hostPath = location.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard hostPath.count == 2, !hostPath[1].isEmpty else { throw MySQLError.badURL("the database name is required") }
        let hostPort = hostPath[0].split(separator: ":", maxSplits: 1)
        guard let host = hostPort.first, !host.isEmpty else { throw MySQLError.badURL("the host is required") }
        var port: UInt32 = 3306
        if hostPort.count == 2 {
            guard let value = UInt32(hostPort[1]), value > 0, value < 65536 else { throw MySQLError.badURL("bad port") }
            port = value
        }
        let database = hostPath[1].split(separator: "?", maxSplits: 1)[0]
        self.init(
            host: String(host), port: port, user: Self.percentDecode(userPassword[0]),
            password: userPassword.count > 1 ? Self.percentDecode(userPassword[1]) : "", database: Self.percentDecode(database)
        )
    }

    /// Percent-decodes a part of the URL; `+` stays itself here (it is a space only in
    /// query strings). A malformed escape is kept as written.
    private static func percentDecode(_ text: Substring) -> String {
        String(text).removingPercentEncoding ?? String(text)
    }
}

public enum MySQLError: Error, CustomStringConvertible {
    case badURL(String)
    case server(code: UInt32, message: String)

    public var description: String {
        switch self {
        case .badURL(let reason): "DATABASE_URL: \(reason)"
        case .server(let code, let message): "MySQL error \(code): \(message)"
        }
    }

    var code: UInt32? {
        if case .server(let code, _) = self { return code }
        return nil
    }
}
