import NIOCore

/// Errors from `MessagePackReader`.
public struct MessagePackError: Error, Equatable, CustomStringConvertible {
    /// The byte offset in the input where reading stopped.
    public let offset: Int
    /// What was wrong there.
    public let reason: String
    public var description: String { "invalid MessagePack at byte \(offset): \(reason)" }
}

/// Reads MessagePack into the values Socket.IO carries, as socket.io-msgpack-parser's
/// notepack.io writes them: nil, booleans, integers and floats (numbers, as JavaScript's are
/// doubles), strings, binary, arrays, and maps with string keys. notepack's `undefined`
/// (fixext 1 of type 0) reads as null, as `JSON.stringify` would give it. Other extension
/// types, maps with non-string keys and strings that are not UTF-8 are refused.
///
/// Client input: every length is checked against the bytes left before anything is
/// reserved (a header may claim four billion elements in five bytes), nesting stops at
/// `maxDepth`, and maps go through `JSONObject`, whose insertions are hashed; reading is
/// linear in the input.
public enum MessagePackReader {
    /// Reads `bytes` as one MessagePack value and nothing after it.
    public static func parse(bytes: UnsafeRawBufferPointer, maxDepth: Int = JSONParser.defaultMaxDepth) throws(MessagePackError) -> JSONValue {
        var reader = Reader(bytes: bytes, maxDepth: maxDepth)
        let value = try reader.value(depth: 0)
        guard reader.index == bytes.count else { throw reader.error("trailing bytes") }
        return value
    }

    private struct Reader {
        let bytes: UnsafeRawBufferPointer
        let maxDepth: Int
        var index = 0

        init(bytes: UnsafeRawBufferPointer, maxDepth: Int) {
            self.bytes = bytes
            self.maxDepth = maxDepth
        }

        func error(_ reason: String) -> MessagePackError {
            MessagePackError(offset: index, reason: reason)
        }

        var remaining: Int { bytes.count - index }

        mutating func byte() throws(MessagePackError) -> UInt8 {
            guard index < bytes.count else { throw error("unexpected end") }
            defer { index += 1 }
            return bytes[index]
        }

        /// A big-endian unsigned integer of `width` bytes.
        mutating func unsigned(_ width: Int) throws(MessagePackError) -> UInt64 {
            guard remaining >= width else { throw error("unexpected end") }
            var value: UInt64 = 0
            for offset in 0..<width { value = value << 8 | UInt64(bytes[index + offset]) }
            index += width
            return value
        }

        mutating func signed(_ width: Int) throws(MessagePackError) -> Int64 {
            let raw = try unsigned(width)
            let shift = UInt64(64 - 8 * width)
            return Int64(bitPattern: raw << shift) >> Int64(shift)  // sign-extended
        }

        /// `count` bytes, which must be there.
        mutating func take(_ count: Int) throws(MessagePackError) -> UnsafeRawBufferPointer {
            guard count >= 0, remaining >= count else { throw error("length past the end") }
            defer { index += count }
            return UnsafeRawBufferPointer(rebasing: bytes[index..<index + count])
        }

        mutating func string(_ length: Int) throws(MessagePackError) -> String {
            let start = index
            let raw = try take(length)
            guard let string = String(validating: raw, as: UTF8.self) else {
                throw MessagePackError(offset: start, reason: "a string that is not UTF-8")
            }
            return string
        }

        mutating func value(depth: Int) throws(MessagePackError) -> JSONValue {
            let head = try byte()
            switch head {
            case 0x00...0x7F: return .number(Double(head))
            case 0x80...0x8F: return try map(Int(head & 0x0F), depth: depth)
            case 0x90...0x9F: return try array(Int(head & 0x0F), depth: depth)
            case 0xA0...0xBF: return .string(try string(Int(head & 0x1F)))
            case 0xC0: return .null
            case 0xC2: return .bool(false)
            case 0xC3: return .bool(true)
            case 0xC4: return .binary(ByteBuffer(bytes: try take(Int(try unsigned(1)))))
            case 0xC5: return .binary(ByteBuffer(bytes: try take(Int(try unsigned(2)))))
            case 0xC6: return .binary(ByteBuffer(bytes: try take(Int(try unsigned(4)))))
            case 0xCA: return .number(Double(Float(bitPattern: UInt32(try unsigned(4)))))
            case 0xCB: return .number(Double(bitPattern: try unsigned(8)))
            case 0xCC: return .number(Double(try unsigned(1)))
            case 0xCD: return .number(Double(try unsigned(2)))
            case 0xCE: return .number(Double(try unsigned(4)))
            case 0xCF: return .number(Double(try unsigned(8)))
            case 0xD0: return .number(Double(try signed(1)))
            case 0xD1: return .number(Double(try signed(2)))
            case 0xD2: return .number(Double(try signed(4)))
            case 0xD3: return .number(Double(try signed(8)))
            case 0xD4:
                // fixext 1: notepack's `undefined` is type 0 with a 0 byte.
                let type = try byte()
                let data = try byte()
                guard type == 0, data == 0 else { throw error("unsupported extension type") }
                return .null
            case 0xD9: return .string(try string(Int(try unsigned(1))))
            case 0xDA: return .string(try string(Int(try unsigned(2))))
            case 0xDB: return .string(try string(Int(try unsigned(4))))
            case 0xDC: return try array(Int(try unsigned(2)), depth: depth)
            case 0xDD: return try array(Int(try unsigned(4)), depth: depth)
            case 0xDE: return try map(Int(try unsigned(2)), depth: depth)
            case 0xDF: return try map(Int(try unsigned(4)), depth: depth)
            case 0xE0...0xFF: return .number(Double(Int8(bitPattern: head)))
            default:
                index -= 1
                throw error("unsupported type 0x\(String(head, radix: 16))")
            }
        }

        mutating func array(_ count: Int, depth: Int) throws(MessagePackError) -> JSONValue {
            guard depth < maxDepth else { throw error("nesting too deep") }
            // Every element takes a byte at least: a count past what is left is a lie.
            guard count <= remaining else { throw error("more elements than bytes") }
            var elements: [JSONValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try value(depth: depth + 1)) }
            return .array(elements)
        }

        mutating func map(_ count: Int, depth: Int) throws(MessagePackError) -> JSONValue {
            guard depth < maxDepth else { throw error("nesting too deep") }
            guard count <= remaining / 2 else { throw error("more members than bytes") }
            var object = JSONObject()
            for _ in 0..<count {
                guard case .string(let key) = try value(depth: depth + 1) else { throw error("a map key that is not a string") }
                object[key] = try value(depth: depth + 1)
            }
            return .object(object)
        }
    }
}
