import ExtrasBase64

/// Random identifiers from the system's cryptographic generator, as URL-safe base64 without
/// padding, so that they are unguessable and need no escaping in a query: Engine.IO session
/// ids (18 bytes, 24 characters) and Socket.IO socket and private session ids (15 bytes,
/// 20 characters, like the reference's base64id).
public enum RandomIdentifier {
    /// A new identifier of `byteCount` random bytes, as URL-safe base64 without padding.
    public static func make(byteCount: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        let bytes = [UInt8](unsafeUninitializedCapacity: byteCount) { buffer, count in
            for index in 0..<byteCount { buffer[index] = generator.next() }
            count = byteCount
        }
        return Base64.encodeToString(bytes: bytes, options: [.base64UrlAlphabet, .omitPaddingCharacter])
    }

    /// An Engine.IO session id: 144 bits.
    static func sessionID() -> String { make(byteCount: 18) }
}
