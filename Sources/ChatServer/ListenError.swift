import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Why the server could not listen, said as a person would, on one line: which address
/// and port, what is wrong, and which flag or variable changes it.
struct ListenError: Error, CustomStringConvertible {
    let description: String

    /// The bind errors people meet (the port taken, a port only root may bind, an address
    /// not on this machine), or nil for any other error.
    init?(_ error: any Error, host: String, port: Int) {
        guard let error = error as? IOError else { return nil }
        let address = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        switch error.errnoCode {
        case EADDRINUSE:
            description = "cannot listen on \(address): another program is using port \(port); choose another with --port or PORT"
        case EACCES:
            description =
                "cannot listen on \(address): ports below 1024 need root or CAP_NET_BIND_SERVICE; choose another with --port or PORT"
        case EADDRNOTAVAIL:
            description = "cannot listen on \(address): no interface of this machine has that address; choose another with --host or HOST"
        default:
            return nil
        }
    }
}
