import NIOCore

/// Why a reply could not be read. Any of these ends the connection.
public struct RESPDecodingError: Error, Equatable, CustomStringConvertible {
    /// What was wrong with the bytes.
    public let reason: String
    public var description: String { "invalid RESP: \(reason)" }
}

/// Reads RESP2 values from a byte stream, however it is cut into reads.
///
/// It resumes where it stopped: an array's elements are kept as they complete, so a reply
/// of n bytes costs O(n) whatever the number of reads it arrives in (a decoder that parsed
/// from the start of an incomplete reply on every read would cost O(n²)). Bounded: bulk
/// strings up to `maxBulkLength` bytes, arrays up to `maxArrayCount` elements and
/// `maxDepth` levels.
public struct RESPDecoder: NIOSingleStepByteToMessageDecoder {
    public typealias InboundOut = RESPValue

    /// The longest bulk string accepted, in bytes.
    public let maxBulkLength: Int
    /// The most elements an array may announce.
    public let maxArrayCount: Int
    /// The deepest nesting of arrays accepted.
    public let maxDepth: Int
    /// The longest line (a simple string or an error message).
    static let maxLineLength = 1 << 16

    /// An array being filled.
    private struct OpenArray {
        var remaining: Int
        var elements: [RESPValue]
    }

    /// The arrays being filled, outermost first.
    private var open: [OpenArray] = []

    /// A decoder with these bounds.
    public init(maxBulkLength: Int = 64 << 20, maxArrayCount: Int = 1 << 20, maxDepth: Int = 16) {
        self.maxBulkLength = maxBulkLength
        self.maxArrayCount = maxArrayCount
        self.maxDepth = maxDepth
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> RESPValue? {
        while true {
            guard let value = try readElement(&buffer) else { return nil }
            guard let completed = add(value) else { continue }
            return completed
        }
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> RESPValue? {
        try decode(buffer: &buffer)
    }

    /// Adds a finished element to the innermost open array; returns a value once a
    /// top-level one is complete.
    private mutating func add(_ value: RESPValue) -> RESPValue? {
        var value = value
        // Taken off the stack and put back, so that the array is never copied to append.
        while var innermost = open.popLast() {
            innermost.elements.append(value)
            innermost.remaining -= 1
            guard innermost.remaining == 0 else {
                open.append(innermost)
                return nil
            }
            value = .array(innermost.elements)
        }
        return value
    }

    /// Reads one element: a scalar, or an array header (which opens an array and yields
    /// nothing until its elements are in). Consumes nothing until the element is whole.
    private mutating func readElement(_ buffer: inout ByteBuffer) throws -> RESPValue? {
        while true {
            guard let lineEnd = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\r")) else {
                guard buffer.readableBytes <= Self.maxLineLength else { throw RESPDecodingError(reason: "a line longer than 64 KiB") }
                return nil
            }
            guard lineEnd + 1 < buffer.writerIndex else { return nil }
            guard buffer.getInteger(at: lineEnd + 1, as: UInt8.self) == UInt8(ascii: "\n") else {
                throw RESPDecodingError(reason: "a CR without LF")
            }
            let start = buffer.readerIndex
            guard let type = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
            let line = buffer.getString(at: start + 1, length: lineEnd - start - 1) ?? ""
            let afterLine = lineEnd + 2
            switch type {
            case UInt8(ascii: "+"):
                buffer.moveReaderIndex(to: afterLine)
                return .simpleString(line)
            case UInt8(ascii: "-"):
                buffer.moveReaderIndex(to: afterLine)
                return .error(line)
            case UInt8(ascii: ":"):
                guard let value = Int64(line) else { throw RESPDecodingError(reason: "an integer that is not one") }
                buffer.moveReaderIndex(to: afterLine)
                return .integer(value)
            case UInt8(ascii: "$"):
                guard let length = Int(line), length >= -1, length <= maxBulkLength else {
                    throw RESPDecodingError(reason: "a bulk length out of range")
                }
                if length == -1 {
                    buffer.moveReaderIndex(to: afterLine)
                    return .bulkString(nil)
                }
                guard buffer.writerIndex - afterLine >= length + 2 else { return nil }
                guard buffer.getInteger(at: afterLine + length, as: UInt16.self) == 0x0D0A else {
                    throw RESPDecodingError(reason: "a bulk string without its CRLF")
                }
                // A copy, not a slice: a slice would keep the read buffer shared, and the
                // next read appended to it would copy all of it (O(n²) over a long reply).
                let bytes = buffer.viewBytes(at: afterLine, length: length).map { ByteBuffer(bytes: $0) }
                buffer.moveReaderIndex(to: afterLine + length + 2)
                return .bulkString(bytes)
            case UInt8(ascii: "*"):
                guard let count = Int(line), count >= -1, count <= maxArrayCount else {
                    throw RESPDecodingError(reason: "an array length out of range")
                }
                buffer.moveReaderIndex(to: afterLine)
                if count == -1 { return .array(nil) }
                if count == 0 { return .array([]) }
                guard open.count < maxDepth else { throw RESPDecodingError(reason: "arrays nested too deep") }
                var elements: [RESPValue] = []
                elements.reserveCapacity(min(count, 1024))
                open.append(OpenArray(remaining: count, elements: elements))
                continue  // its first element follows
            default:
                throw RESPDecodingError(reason: "an unknown type byte")
            }
        }
    }
}
