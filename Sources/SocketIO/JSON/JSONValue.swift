import NIOCore
import OrderedCollections

/// A JSON value as Socket.IO carries it: event arguments, ack arguments, auth payloads.
///
/// `.binary` is the one addition to JSON: it travels as a Socket.IO attachment, with a
/// `{"_placeholder":true,"num":N}` in its place in the JSON text.
public enum JSONValue: Sendable, Equatable {
    /// `null`.
    case null
    /// `true` or `false`.
    case bool(Bool)
    /// A number; JSON and JavaScript numbers are doubles.
    case number(Double)
    /// A string.
    case string(String)
    /// An array.
    case array([JSONValue])
    /// An object, its keys in the order they came.
    case object(JSONObject)
    /// Bytes, sent as a binary attachment.
    case binary(ByteBuffer)

    /// The string, if the value is one.
    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The number, if the value is one.
    public var numberValue: Double? {
        if case .number(let value) = self { return value }
        return nil
    }

    /// The value as an exact integer, if it is one.
    public var intValue: Int? {
        guard case .number(let value) = self, value.rounded() == value, abs(value) <= 9_007_199_254_740_991 else { return nil }
        return Int(value)
    }

    /// The boolean, if the value is one.
    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    /// The elements, if the value is an array.
    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    /// The object, if the value is one.
    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    /// The bytes, if the value is binary.
    public var binaryValue: ByteBuffer? {
        if case .binary(let value) = self { return value }
        return nil
    }

    /// Whether the value is `null`.
    public var isNull: Bool { self == .null }

    /// Looks a key up in an object; nil for a missing key or a non-object.
    public subscript(key: String) -> JSONValue? {
        objectValue?[key]
    }

    /// Whether a binary value occurs anywhere inside.
    public var containsBinary: Bool {
        switch self {
        case .binary: true
        case .array(let values): values.contains { $0.containsBinary }
        case .object(let object): object.contains { $0.value.containsBinary }
        default: false
        }
    }
}

/// A JSON object that keeps its keys in insertion order, as JavaScript objects do, so
/// that what a client sent is echoed back in the same shape.
///
/// Objects come from clients, so every operation is linear or better in the number of
/// keys: lookups and insertions are hashed (`OrderedDictionary`, which searches small
/// objects linearly and hashes larger ones), so parsing an object of n keys costs O(n).
public struct JSONObject: Sendable, Equatable, Sequence, ExpressibleByDictionaryLiteral {
    public typealias Element = (key: String, value: JSONValue)

    private var members: OrderedDictionary<String, JSONValue> = [:]

    /// An empty object.
    public init() {}

    /// An object of these members, in this order; a repeated key keeps its first position and its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        for (key, value) in elements { self[key] = value }
    }

    /// How many members the object has.
    public var count: Int { members.count }
    /// Whether the object has no members.
    public var isEmpty: Bool { members.isEmpty }
    /// The keys, in order.
    public var keys: [String] { Array(members.keys) }

    /// The value of `key`. Setting a key that exists keeps its position (as assigning to
    /// a JavaScript object does); setting nil removes it.
    public subscript(key: String) -> JSONValue? {
        get { members[key] }
        set { members[key] = newValue }
    }

    public func makeIterator() -> OrderedDictionary<String, JSONValue>.Iterator {
        members.makeIterator()
    }

    /// Equal when both hold the same keys with equal values, in any order (as a
    /// JavaScript deep-equal would say).
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        lhs.count == rhs.count && lhs.members.allSatisfy { rhs.members[$0.key] == $0.value }
    }
}

extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral, ExpressibleByNilLiteral
{
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(nilLiteral: ()) { self = .null }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        var object = JSONObject()
        for (key, value) in elements { object[key] = value }
        self = .object(object)
    }
}

extension JSONValue {
    /// A string value.
    public init(_ value: String) { self = .string(value) }
    /// A number value.
    public init(_ value: Int) { self = .number(Double(value)) }
    /// A number value (exact up to 2^53, as in JavaScript).
    public init(_ value: Int64) { self = .number(Double(value)) }
    /// A number value.
    public init(_ value: Double) { self = .number(value) }
    /// A boolean value.
    public init(_ value: Bool) { self = .bool(value) }
}
