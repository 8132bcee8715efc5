/// The query string of a request target, as Node's `querystring` reads it (and so the
/// reference server): `&`-separated `key=value` pairs, percent-decoded, `+` standing for a
/// space. The first occurrence of a key wins, so a repeated key cannot smuggle in another
/// value. One pass over the text, whatever its shape.
public enum URLQuery {
    /// The parameters of `uri`'s query (after its `?`); empty without one.
    public static func parameters(ofURI uri: some StringProtocol) -> [String: String] {
        guard let mark = uri.firstIndex(of: "?") else { return [:] }
        return parse(uri[uri.index(after: mark)...])
    }

    /// The parameters of a query string, without its `?`.
    public static func parse(_ query: some StringProtocol) -> [String: String] {
        var result: [String: String] = [:]
        for pair in query.split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = parts.first.map(decode), !key.isEmpty else { continue }
            if result[key] == nil { result[key] = parts.count > 1 ? decode(parts[1]) : "" }
        }
        return result
    }

    /// Percent-decodes one key or value of a query, `+` as a space. A `%` not followed by
    /// two hex digits is dropped with what follows it, as a malformed escape; invalid UTF-8
    /// is repaired.
    public static func decode(_ text: some StringProtocol) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: "%") || $0 == UInt8(ascii: "+") }) else {
            return String(text)
        }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            switch byte {
            case UInt8(ascii: "+"):
                bytes.append(UInt8(ascii: " "))
            case UInt8(ascii: "%"):
                if let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) {
                    bytes.append(high << 4 | low)
                }
            default:
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
