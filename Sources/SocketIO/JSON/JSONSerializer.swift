import NIOCore

/// Writes JSON as JavaScript's `JSON.stringify` does: no spaces, only `"`, `\` and control
/// characters escaped, integral numbers without a fraction, non-finite numbers as `null`.
/// Binary values are written by the packet encoder, which knows their attachment numbers.
enum JSONSerializer {
    static func write(_ value: JSONValue, to buffer: inout ByteBuffer, binary: (inout ByteBuffer, ByteBuffer) -> Void) {
        switch value {
        case .null:
            buffer.writeStaticString("null")
        case .bool(let flag):
            buffer.writeStaticString(flag ? "true" : "false")
        case .number(let number):
            writeNumber(number, to: &buffer)
        case .string(let string):
            writeString(string, to: &buffer)
        case .array(let values):
            buffer.writeInteger(UInt8(ascii: "["))
            for (index, element) in values.enumerated() {
                if index > 0 { buffer.writeInteger(UInt8(ascii: ",")) }
                write(element, to: &buffer, binary: binary)
            }
            buffer.writeInteger(UInt8(ascii: "]"))
        case .object(let object):
            buffer.writeInteger(UInt8(ascii: "{"))
            var first = true
            for (key, member) in object {
                if !first { buffer.writeInteger(UInt8(ascii: ",")) }
                first = false
                writeString(key, to: &buffer)
                buffer.writeInteger(UInt8(ascii: ":"))
                write(member, to: &buffer, binary: binary)
            }
            buffer.writeInteger(UInt8(ascii: "}"))
        case .binary(let bytes):
            binary(&buffer, bytes)
        }
    }

    static func string(_ value: JSONValue) -> String {
        var buffer = ByteBuffer()
        write(value, to: &buffer) { buffer, _ in buffer.writeStaticString("null") }
        return String(buffer: buffer)
    }

    static func writeNumber(_ number: Double, to buffer: inout ByteBuffer) {
        guard number.isFinite else {
            buffer.writeStaticString("null")
            return
        }
        if number.rounded() == number, abs(number) < 1e21 {
            if abs(number) <= 9_007_199_254_740_992 {
                buffer.writeString(String(Int64(number)))
                return
            }
        }
        // Swift prints the shortest round-tripping form, as JavaScript does; only the
        // exponent is spelt differently ("1e-07" against "1e-7", "1e+21" alike).
        var text = number.description
        if let e = text.firstIndex(of: "e") {
            var exponent = text[text.index(after: e)...]
            var sign = "+"
            if exponent.first == "-" || exponent.first == "+" {
                sign = exponent.first == "-" ? "-" : "+"
                exponent = exponent.dropFirst()
            }
            while exponent.count > 1, exponent.first == "0" { exponent = exponent.dropFirst() }
            text = String(text[..<e]) + "e" + sign + exponent
        }
        buffer.writeString(text)
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ string: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        var string = string
        string.withUTF8 { bytes in
            var runStart = 0
            for index in 0..<bytes.count {
                let byte = bytes[index]
                guard byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") else { continue }
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart..<index]))
                runStart = index + 1
                switch byte {
                case UInt8(ascii: "\""): buffer.writeStaticString("\\\"")
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case 0x08: buffer.writeStaticString("\\b")
                case 0x0C: buffer.writeStaticString("\\f")
                case 0x0A: buffer.writeStaticString("\\n")
                case 0x0D: buffer.writeStaticString("\\r")
                case 0x09: buffer.writeStaticString("\\t")
                default:
                    buffer.writeStaticString("\\u00")
                    buffer.writeInteger(hex[Int(byte >> 4)])
                    buffer.writeInteger(hex[Int(byte & 0xF)])
                }
            }
            buffer.writeBytes(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[runStart..<bytes.count]))
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The value as JSON text (binary shown as `null`).
    public var description: String { JSONSerializer.string(self) }
}

extension JSONValue {
    /// The value as JSON text, as `JSON.stringify` writes it; binary values become `null`
    /// (they travel as attachments of a packet, never inside JSON text).
    public var jsonText: String { JSONSerializer.string(self) }
}
