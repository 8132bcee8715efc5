import NIOHTTP1

/// permessage-deflate (RFC 7692) on WebSocket: messages of at least `threshold` bytes are
/// sent compressed to clients that offer the extension (browsers always do), and their
/// compressed messages are read. Off by default, as in the reference (`perMessageDeflate`).
///
/// Memory per connection stays known: the server answers every offer with
/// `server_no_context_takeover` and `client_no_context_takeover`, so neither side keeps a
/// sliding window between messages. Each message is then compressed and inflated on its
/// own, by one compressor and one inflater per event loop rather than per connection: an idle
/// connection holds no zlib state at all. It also lets a broadcast be compressed once per
/// event loop and the same compressed frame go to every recipient there, where a window kept
/// per connection would make every recipient's frame different.
///
/// A compressed message that inflates past `maxHttpBufferSize` closes the connection with
/// 1009 as soon as the limit is passed, without inflating the rest; one that does not inflate
/// (corrupt data) closes it with 1007.
public struct PerMessageDeflate: Sendable, Hashable {
    /// The smallest message compressed, in bytes (the reference's default: 1,024).
    public var threshold: Int

    /// Compresses messages of at least `threshold` bytes.
    public init(threshold: Int = 1024) {
        self.threshold = threshold
    }

    /// Messages shorter than this are never compressed, whatever `threshold` says: deflate
    /// cannot make them shorter by enough to pay for the work.
    static let minimumCompressed = 64
}

/// The outcome of negotiating permessage-deflate with one client: what the 101 answers in
/// `Sec-WebSocket-Extensions`, and the window the server's compressor may use.
struct DeflateAgreement: Sendable, Hashable {
    /// The LZ77 window of the messages the server sends, as base-2 logarithm (9...15): 15,
    /// or less if the client asked for less (`server_max_window_bits`).
    var serverWindowBits: Int32

    /// The `Sec-WebSocket-Extensions` value of the response.
    var responseHeader: String {
        var value = "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
        if serverWindowBits < 15 { value += "; server_max_window_bits=\(serverWindowBits)" }
        return value
    }

    /// The first permessage-deflate offer among the request's `Sec-WebSocket-Extensions`
    /// headers that the server can accept, or nil (then the connection goes uncompressed).
    ///
    /// An offer is skipped if it repeats a parameter, names one RFC 7692 does not define, or
    /// gives one a value out of range; and if it asks for an 8-bit server window, which zlib
    /// cannot produce (it silently uses 9 bits for raw deflate).
    static func negotiate(_ headers: HTTPHeaders) -> DeflateAgreement? {
        for value in headers[canonicalForm: "sec-websocket-extensions"] {
            for offer in value.split(separator: ",") {
                if let agreement = accept(offer) { return agreement }
            }
        }
        return nil
    }

    private static func accept(_ offer: Substring) -> DeflateAgreement? {
        let parts = offer.split(separator: ";", omittingEmptySubsequences: false)
        guard let name = parts.first, name.trimmingSpaces().lowercased() == "permessage-deflate" else { return nil }
        var seen = Set<String>()
        var windowBits: Int32 = 15
        for parameter in parts.dropFirst() {
            let pair = parameter.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let key = pair[0].trimmingSpaces().lowercased()
            var value: Substring? = pair.count == 2 ? pair[1].trimmingSpaces() : nil
            if let quoted = value, quoted.count >= 2, quoted.first == "\"", quoted.last == "\"" {
                value = quoted.dropFirst().dropLast()
            }
            guard seen.insert(key).inserted else { return nil }
            switch key {
            case "server_no_context_takeover", "client_no_context_takeover":
                guard value == nil else { return nil }
            case "server_max_window_bits":
                guard let value, let bits = Int32(value), (9...15).contains(bits) else { return nil }
                windowBits = bits
            case "client_max_window_bits":
                // The client's window is its own: every message starts afresh, and the
                // inflater's 15 bits take any window.
                if let value {
                    guard let bits = Int32(value), (8...15).contains(bits) else { return nil }
                }
            default:
                return nil
            }
        }
        return DeflateAgreement(serverWindowBits: windowBits)
    }
}
