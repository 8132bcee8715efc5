#if canImport(Glibc)
import Glibc
#endif

/// CPU time and resident memory of a server's processes (one, or a cluster's nodes and
/// Redis), summed, from /proc.
struct ProcessStats {
    let pids: [Int32]

    func cpuSeconds() -> Double? {
        let each = pids.map(cpuSeconds(of:))
        return each.contains { $0 == nil } ? nil : each.reduce(0) { $0 + $1! }
    }

    func residentBytes() -> Int? {
        let each = pids.map(residentBytes(of:))
        return each.contains { $0 == nil } ? nil : each.reduce(0) { $0 + $1! }
    }

    /// User plus system CPU seconds used so far.
    private func cpuSeconds(of pid: Int32) -> Double? {
        guard let stat = read("/proc/\(pid)/stat"), let end = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command name; utime and stime are fields 14 and 15 of the line.
        let fields = stat[stat.index(after: end)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Resident set size in bytes.
    private func residentBytes(of pid: Int32) -> Int? {
        guard let status = read("/proc/\(pid)/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let kilobytes = line.split(separator: " ").dropFirst().first.flatMap { Int($0) }
            return kilobytes.map { $0 * 1024 }
        }
        return nil
    }

    private func read(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
