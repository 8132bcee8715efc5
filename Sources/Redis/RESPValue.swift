import NIOCore

/// A value of RESP2, the Redis serialization protocol: what Redis answers and, as arrays of
/// bulk strings, what it is sent.
public enum RESPValue: Sendable, Equatable {
    /// `+OK`
    case simpleString(String)
    /// `-ERR …`: the command failed; the connection goes on.
    case error(String)
    /// `:42`
    case integer(Int64)
    /// `$3\r\nfoo`; nil for the null bulk string (`$-1`).
    case bulkString(ByteBuffer?)
    /// `*2\r\n…`; nil for the null array (`*-1`).
    case array([RESPValue]?)

    /// A bulk string of `text`'s UTF-8.
    public static func bulk(_ text: String) -> RESPValue { .bulkString(ByteBuffer(string: text)) }

    /// The value as text: a simple or bulk string.
    public var string: String? {
        switch self {
        case .simpleString(let text): text
        case .bulkString(let bytes?): String(buffer: bytes)
        default: nil
        }
    }

    /// The value of an integer reply.
    public var integer: Int64? {
        if case .integer(let value) = self { return value }
        return nil
    }

    /// The elements of a non-null array reply.
    public var array: [RESPValue]? {
        if case .array(let values?) = self { return values }
        return nil
    }

    /// Whether the reply is a null bulk string or a null array.
    public var isNull: Bool {
        switch self {
        case .bulkString(nil), .array(nil): true
        default: false
        }
    }
}

/// Writes a command as Redis wants it: an array of bulk strings.
public enum RESPCommandEncoder {
    /// Appends the command `arguments` (its name first) to `buffer`.
    public static func encode(_ arguments: [ByteBuffer], into buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "*"))
        buffer.writeString(String(arguments.count))
        buffer.writeStaticString("\r\n")
        for argument in arguments {
            buffer.writeInteger(UInt8(ascii: "$"))
            buffer.writeString(String(argument.readableBytes))
            buffer.writeStaticString("\r\n")
            var argument = argument
            buffer.writeBuffer(&argument)
            buffer.writeStaticString("\r\n")
        }
    }
}
