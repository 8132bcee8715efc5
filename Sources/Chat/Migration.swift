import Foundation

/// One numbered schema change: `migrations/<dialect>/NNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public var version: Int
    public var name: String
    public var sql: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
    }

    /// The statements of the file, split at semicolons that end a line; comment lines dropped.
    public var statements: [String] {
        var statements: [String] = []
        var current = ""
        for line in sql.split(separator: "\n", omittingEmptySubsequences: false) {
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.hasPrefix("--") || trimmed.isEmpty { continue }
            current += line + "\n"
            if trimmed.hasSuffix(";") {
                statements.append(String(current.trimmingCharacters(in: .whitespacesAndNewlines).dropLast()))
                current = ""
            }
        }
        let rest = current.trimmingCharacters(in: .whitespacesAndNewlines)
        if !rest.isEmpty { statements.append(rest) }
        return statements
    }

    /// Reads `directory/NNN_name.sql` files, sorted by number.
    public static func load(from directory: String) throws -> [Migration] {
        let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".sql") }
        var migrations: [Migration] = []
        for file in files {
            guard let number = Int(file.prefix { $0.isNumber }) else { throw MigrationError.badFileName(file) }
            let sql = try String(contentsOfFile: directory + "/" + file, encoding: .utf8)
            migrations.append(Migration(version: number, name: String(file.dropLast(4)), sql: sql))
        }
        migrations.sort { $0.version < $1.version }
        if Set(migrations.map(\.version)).count != migrations.count { throw MigrationError.duplicateVersion }
        return migrations
    }

    /// The migrations still to apply to a database that has `applied`.
    public static func pending(_ known: [Migration], applied: [Int]) throws -> [Migration] {
        let newest = known.map(\.version).max() ?? 0
        if let databaseNewest = applied.max(), databaseNewest > newest {
            throw MigrationError.databaseIsNewer(database: databaseNewest, known: newest)
        }
        let done = Set(applied)
        return known.filter { !done.contains($0.version) }
    }
}

public enum MigrationError: Error, Equatable, CustomStringConvertible {
    case databaseIsNewer(database: Int, known: Int)
    case badFileName(String)
    case duplicateVersion

    public var description: String {
        switch self {
        case .databaseIsNewer(let database, let known):
            "the database schema is at version \(database), newer than this build knows (\(known)): refusing to start"
        case .badFileName(let name): "migration file \(name) does not start with its number"
        case .duplicateVersion: "two migration files have the same number"
        }
    }
}
