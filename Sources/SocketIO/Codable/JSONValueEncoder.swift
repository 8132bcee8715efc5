import Foundation
import NIOCore

/// Encodes an `Encodable` value straight into a `JSONValue`, with no JSON text in between:
/// what a typed `emit` sends. `Data` and `ByteBuffer` become `.binary`, which Socket.IO sends
/// as an attachment; a `Date` is milliseconds since 1970, as JavaScript's `Date.now()`; a
/// `JSONValue` is itself.
public struct JSONValueEncoder: Sendable {
    /// An encoder.
    public init() {}

    /// The value as a `JSONValue`.
    public func encode<T: Encodable>(_ value: T) throws -> JSONValue {
        let root = Slot()
        try root.encode(value, codingPath: [])
        return root.value
    }

    /// Values encoded as themselves rather than through their `Encodable` conformance.
    static func direct(_ value: some Encodable) -> JSONValue? {
        switch value {
        case let json as JSONValue: json
        case let buffer as ByteBuffer: .binary(buffer)
        case let data as Data: .binary(ByteBuffer(bytes: data))
        case let date as Date: .number((date.timeIntervalSince1970 * 1000).rounded())
        case let url as URL: .string(url.absoluteString)
        default: nil
        }
    }
}

/// One place in the value being encoded. Containers are references, so that a nested
/// container written after its parent moved on still lands in the tree; the tree becomes a
/// `JSONValue` once, at the end.
private final class Slot {
    private enum Content {
        case empty
        case value(JSONValue)
        case object(keys: [String], slots: [String: Slot])
        case array([Slot])
    }

    private var content = Content.empty

    var value: JSONValue {
        switch content {
        case .empty: return .object(JSONObject())
        case .value(let value): return value
        case .object(let keys, let slots):
            var object = JSONObject()
            for key in keys { object[key] = slots[key]!.value }
            return .object(object)
        case .array(let slots): return .array(slots.map(\.value))
        }
    }

    func set(_ value: JSONValue) { content = .value(value) }

    func encode(_ value: some Encodable, codingPath: [any CodingKey]) throws {
        if let direct = JSONValueEncoder.direct(value) {
            content = .value(direct)
        } else {
            try value.encode(to: SlotEncoder(slot: self, codingPath: codingPath))
        }
    }

    /// The member `key` of this object (made one if it is not yet).
    func member(_ key: String) -> Slot {
        var (keys, slots): ([String], [String: Slot]) = ([], [:])
        if case .object(let existingKeys, let existingSlots) = content { (keys, slots) = (existingKeys, existingSlots) }
        if let slot = slots[key] { return slot }
        let slot = Slot()
        keys.append(key)
        slots[key] = slot
        content = .object(keys: keys, slots: slots)
        return slot
    }

    func makeObject() {
        if case .object = content { return }
        content = .object(keys: [], slots: [:])
    }

    /// A new last element of this array (made one if it is not yet).
    func appended() -> Slot {
        var slots: [Slot] = []
        if case .array(let existing) = content { slots = existing }
        let slot = Slot()
        slots.append(slot)
        content = .array(slots)
        return slot
    }

    func makeArray() {
        if case .array = content { return }
        content = .array([])
    }

    var count: Int {
        if case .array(let slots) = content { return slots.count }
        return 0
    }
}

private struct SlotEncoder: Encoder {
    let slot: Slot
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        slot.makeObject()
        return KeyedEncodingContainer(KeyedSlotContainer(slot: slot, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        slot.makeArray()
        return UnkeyedSlotContainer(slot: slot, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleSlotContainer(slot: slot, codingPath: codingPath)
    }
}

/// A JavaScript number holds integers exactly up to 2^53.
private func number(_ value: some BinaryInteger, codingPath: [any CodingKey]) throws -> JSONValue {
    guard value.magnitude <= 9_007_199_254_740_991 else {
        throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "\(value) is beyond what a JavaScript number holds exactly"))
    }
    return .number(Double(value))
}

private func number(_ value: some BinaryFloatingPoint, codingPath: [any CodingKey]) throws -> JSONValue {
    guard value.isFinite else {
        throw EncodingError.invalidValue(value, .init(codingPath: codingPath, debugDescription: "JSON has no \(value)"))
    }
    return .number(Double(value))
}

private struct KeyedSlotContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { slot.member(key.stringValue).set(.null) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { slot.member(key.stringValue).set(.bool(value)) }
    mutating func encode(_ value: String, forKey key: Key) throws { slot.member(key.stringValue).set(.string(value)) }
    mutating func encode(_ value: Double, forKey key: Key) throws { slot.member(key.stringValue).set(try number(value, codingPath: codingPath + [key])) }
    mutating func encode(_ value: Float, forKey key: Key) throws { slot.member(key.stringValue).set(try number(value, codingPath: codingPath + [key])) }
    mutating func encode(_ value: Int, forKey key: Key) throws { slot.member(key.stringValue).set(try number(value, codingPath: codingPath + [key])) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { slot.member(key.stringValue).set(try number(value, codingPath: codingPath + [key])) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { slot.member(key.stringValue).set(try number(value, codingPath: codingPath + [key])) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try slot.member(key.stringValue).encode(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        SlotEncoder(slot: slot.member("super"), codingPath: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        SlotEncoder(slot: slot.member(key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedSlotContainer: UnkeyedEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]

    var count: Int { slot.count }
    private var nextPath: [any CodingKey] { codingPath + [IndexKey(intValue: count)] }

    mutating func encodeNil() throws { slot.appended().set(.null) }
    mutating func encode(_ value: Bool) throws { slot.appended().set(.bool(value)) }
    mutating func encode(_ value: String) throws { slot.appended().set(.string(value)) }
    mutating func encode(_ value: Double) throws { slot.appended().set(try number(value, codingPath: nextPath)) }
    mutating func encode(_ value: Float) throws { slot.appended().set(try number(value, codingPath: nextPath)) }
    mutating func encode(_ value: Int) throws { slot.appended().set(try number(value, codingPath: nextPath)) }
    mutating func encode(_ value: Int64) throws { slot.appended().set(try number(value, codingPath: nextPath)) }
    mutating func encode(_ value: UInt64) throws { slot.appended().set(try number(value, codingPath: nextPath)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = nextPath
        try slot.appended().encode(value, codingPath: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = nextPath
        return SlotEncoder(slot: slot.appended(), codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = nextPath
        return SlotEncoder(slot: slot.appended(), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let path = nextPath
        return SlotEncoder(slot: slot.appended(), codingPath: path)
    }
}

private struct SingleSlotContainer: SingleValueEncodingContainer {
    let slot: Slot
    let codingPath: [any CodingKey]

    mutating func encodeNil() throws { slot.set(.null) }
    mutating func encode(_ value: Bool) throws { slot.set(.bool(value)) }
    mutating func encode(_ value: String) throws { slot.set(.string(value)) }
    mutating func encode(_ value: Double) throws { slot.set(try number(value, codingPath: codingPath)) }
    mutating func encode(_ value: Float) throws { slot.set(try number(value, codingPath: codingPath)) }
    mutating func encode(_ value: Int) throws { slot.set(try number(value, codingPath: codingPath)) }
    mutating func encode(_ value: Int64) throws { slot.set(try number(value, codingPath: codingPath)) }
    mutating func encode(_ value: UInt64) throws { slot.set(try number(value, codingPath: codingPath)) }
    mutating func encode<T: Encodable>(_ value: T) throws { try slot.encode(value, codingPath: codingPath) }
}

/// An array position as a coding key.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "\(intValue ?? 0)" }
    init(intValue: Int) { self.intValue = intValue }
    init?(stringValue: String) { nil }
}
