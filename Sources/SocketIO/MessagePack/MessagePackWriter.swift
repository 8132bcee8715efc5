import NIOCore

/// Writes the values Socket.IO carries as MessagePack, in the forms notepack.io (under
/// socket.io-msgpack-parser) picks: a number that is a whole value within 64 bits as the
/// shortest integer, any other as a float 64; strings, binary, arrays and maps in their
/// shortest headers; null as nil.
public enum MessagePackWriter {
    /// Appends `value` to `buffer`.
    public static func write(_ value: JSONValue, to buffer: inout ByteBuffer) {
        switch value {
        case .null:
            buffer.writeInteger(UInt8(0xC0))
        case .bool(let flag):
            buffer.writeInteger(UInt8(flag ? 0xC3 : 0xC2))
        case .number(let number):
            writeNumber(number, to: &buffer)
        case .string(let string):
            let length = string.utf8.count
            if length < 32 {
                buffer.writeInteger(UInt8(0xA0 | length))
            } else if length <= 0xFF {
                buffer.writeInteger(UInt8(0xD9))
                buffer.writeInteger(UInt8(length))
            } else if length <= 0xFFFF {
                buffer.writeInteger(UInt8(0xDA))
                buffer.writeInteger(UInt16(length))
            } else {
                buffer.writeInteger(UInt8(0xDB))
                buffer.writeInteger(UInt32(length))
            }
            buffer.writeString(string)
        case .binary(let bytes):
            let length = bytes.readableBytes
            if length <= 0xFF {
                buffer.writeInteger(UInt8(0xC4))
                buffer.writeInteger(UInt8(length))
            } else if length <= 0xFFFF {
                buffer.writeInteger(UInt8(0xC5))
                buffer.writeInteger(UInt16(length))
            } else {
                buffer.writeInteger(UInt8(0xC6))
                buffer.writeInteger(UInt32(length))
            }
            buffer.writeImmutableBuffer(bytes)
        case .array(let elements):
            writeHeader(count: elements.count, fix: 0x90, sixteen: 0xDC, thirtyTwo: 0xDD, to: &buffer)
            for element in elements { write(element, to: &buffer) }
        case .object(let object):
            writeHeader(count: object.count, fix: 0x80, sixteen: 0xDE, thirtyTwo: 0xDF, to: &buffer)
            for (key, member) in object {
                write(.string(key), to: &buffer)
                write(member, to: &buffer)
            }
        }
    }

    private static func writeHeader(count: Int, fix: UInt8, sixteen: UInt8, thirtyTwo: UInt8, to buffer: inout ByteBuffer) {
        if count < 16 {
            buffer.writeInteger(fix | UInt8(count))
        } else if count <= 0xFFFF {
            buffer.writeInteger(sixteen)
            buffer.writeInteger(UInt16(count))
        } else {
            buffer.writeInteger(thirtyTwo)
            buffer.writeInteger(UInt32(count))
        }
    }

    private static func writeNumber(_ number: Double, to buffer: inout ByteBuffer) {
        // Whole values within Int64 (and UInt64) go as integers, as notepack writes them.
        guard number.rounded(.towardZero) == number, number >= -9_223_372_036_854_775_808, number < 18_446_744_073_709_551_616 else {
            buffer.writeInteger(UInt8(0xCB))
            buffer.writeInteger(number.bitPattern)
            return
        }
        if number >= 0 {
            let value = UInt64(number)
            switch value {
            case 0...0x7F: buffer.writeInteger(UInt8(value))
            case 0...0xFF:
                buffer.writeInteger(UInt8(0xCC))
                buffer.writeInteger(UInt8(value))
            case 0...0xFFFF:
                buffer.writeInteger(UInt8(0xCD))
                buffer.writeInteger(UInt16(value))
            case 0...0xFFFF_FFFF:
                buffer.writeInteger(UInt8(0xCE))
                buffer.writeInteger(UInt32(value))
            default:
                buffer.writeInteger(UInt8(0xCF))
                buffer.writeInteger(value)
            }
        } else {
            let value = Int64(number)
            switch value {
            case -32...(-1): buffer.writeInteger(Int8(value))
            case -0x80...(-1):
                buffer.writeInteger(UInt8(0xD0))
                buffer.writeInteger(Int8(value))
            case -0x8000...(-1):
                buffer.writeInteger(UInt8(0xD1))
                buffer.writeInteger(Int16(value))
            case -0x8000_0000...(-1):
                buffer.writeInteger(UInt8(0xD2))
                buffer.writeInteger(Int32(value))
            default:
                buffer.writeInteger(UInt8(0xD3))
                buffer.writeInteger(value)
            }
        }
    }
}
