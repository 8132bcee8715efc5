/// Standard base64 (RFC 4648 §4, with padding), as the polling transport uses for binary.
enum Base64 {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    private static let urlAlphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)

    private static let decodeTable: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (index, character) in alphabet.enumerated() { table[Int(character)] = UInt8(index) }
        return table
    }()

    static func encode<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        encode(bytes, alphabet: alphabet, padded: true)
    }

    /// URL-safe base64 without padding, for session ids.
    static func encodeURLSafe<Bytes: Collection>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        encode(bytes, alphabet: urlAlphabet, padded: false)
    }

    private static func encode<Bytes: Collection>(
        _ bytes: Bytes, alphabet: [UInt8], padded: Bool
    ) -> String where Bytes.Element == UInt8 {
        let input = Array(bytes)
        let outputLength = (input.count + 2) / 3 * 4
        return String(unsafeUninitializedCapacity: outputLength) { output in
            var out = 0
            var index = 0
            while index + 2 < input.count {
                let value = UInt32(input[index]) << 16 | UInt32(input[index + 1]) << 8 | UInt32(input[index + 2])
                output[out] = alphabet[Int(value >> 18 & 0x3F)]
                output[out + 1] = alphabet[Int(value >> 12 & 0x3F)]
                output[out + 2] = alphabet[Int(value >> 6 & 0x3F)]
                output[out + 3] = alphabet[Int(value & 0x3F)]
                out += 4
                index += 3
            }
            let remaining = input.count - index
            if remaining > 0 {
                var value = UInt32(input[index]) << 16
                if remaining == 2 { value |= UInt32(input[index + 1]) << 8 }
                output[out] = alphabet[Int(value >> 18 & 0x3F)]
                output[out + 1] = alphabet[Int(value >> 12 & 0x3F)]
                out += 2
                if remaining == 2 {
                    output[out] = alphabet[Int(value >> 6 & 0x3F)]
                    out += 1
                } else if padded {
                    output[out] = UInt8(ascii: "=")
                    out += 1
                }
                if padded {
                    output[out] = UInt8(ascii: "=")
                    out += 1
                }
            }
            return out
        }
    }

    /// Decodes padded or unpadded standard base64; nil on any other character.
    static func decode<Bytes: Collection>(_ bytes: Bytes) -> [UInt8]? where Bytes.Element == UInt8 {
        var input = Array(bytes)
        while input.last == UInt8(ascii: "=") { input.removeLast() }
        if input.count % 4 == 1 { return nil }
        var output: [UInt8] = []
        output.reserveCapacity(input.count * 3 / 4)
        var accumulator: UInt32 = 0
        var bits = 0
        for character in input {
            let value = decodeTable[Int(character)]
            if value == 0xFF { return nil }
            accumulator = accumulator << 6 | UInt32(value)
            bits += 6
            if bits >= 8 {
                bits -= 8
                output.append(UInt8(truncatingIfNeeded: accumulator >> UInt32(bits)))
            }
        }
        return output
    }
}
