/// Session ids: 18 bytes from the system's cryptographic generator (144 bits), URL-safe
/// base64 without padding, so that they are unguessable and need no escaping in a query.
enum SessionID {
    static func make() -> String {
        var generator = SystemRandomNumberGenerator()
        let words: [UInt64] = [generator.next(), generator.next(), generator.next()]
        let bytes = words.withUnsafeBytes { Array($0.prefix(18)) }
        return Base64.encodeURLSafe(bytes)
    }
}
