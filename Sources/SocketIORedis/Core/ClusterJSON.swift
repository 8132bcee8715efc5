import Foundation
import NIOCore
import SocketIO

/// JSON between nodes that keeps binary values. JSON has no bytes, so a value that holds
/// some (a socket's `data`, a server-side event's arguments, another node's answer) is split
/// as a Socket.IO packet splits it: each `.binary` replaced by the placeholder
/// `{"_placeholder":true,"num":N}` and its bytes carried beside the value, in base64, both in
/// a one-key object `{"\u0000binary":[value,["…",…]]}`. A value without bytes travels as it is.
enum ClusterJSON {
    /// The wrapper's key. A value that looks like a wrapper (a client can send anything) is
    /// wrapped too, so that it comes back as it was.
    static let key = "\u{0}binary"

    /// `value` ready for JSON text: itself, or its wrapper if it holds bytes.
    static func wrap(_ value: JSONValue) -> JSONValue {
        guard value.containsBinary || value.objectValue.map({ $0.count == 1 && $0[key] != nil }) == true else { return value }
        var attachments: [JSONValue] = []
        let split = placeholding(value, into: &attachments)
        return [key: [split, .array(attachments)]]
    }

    /// The value `wrap` made; a wrapper whose placeholders name no attachment is nil.
    static func unwrap(_ value: JSONValue) -> JSONValue? {
        guard let object = value.objectValue, object.count == 1, let parts = object[key]?.arrayValue else { return value }
        guard parts.count == 2, let encoded = parts[1].arrayValue else { return nil }
        var attachments: [ByteBuffer] = []
        attachments.reserveCapacity(encoded.count)
        for item in encoded {
            guard let text = item.stringValue, let data = Data(base64Encoded: text) else { return nil }
            attachments.append(ByteBuffer(bytes: data))
        }
        return restoring(parts[0], from: attachments)
    }

    /// JSON text of `value`, bytes kept.
    static func text(_ value: JSONValue) -> String { wrap(value).jsonText }

    /// The value of `text` (from `text(_:)`); nil if it is not JSON or a broken wrapper.
    static func parse(_ text: some StringProtocol) -> JSONValue? {
        (try? JSONParser.parse(String(text))).flatMap(unwrap)
    }

    private static func placeholding(_ value: JSONValue, into attachments: inout [JSONValue]) -> JSONValue {
        switch value {
        case .binary(let bytes):
            attachments.append(.string(Data(bytes.readableBytesView).base64EncodedString()))
            return ["_placeholder": true, "num": .number(Double(attachments.count - 1))]
        case .array(let values):
            return .array(values.map { placeholding($0, into: &attachments) })
        case .object(let object):
            var copy = JSONObject()
            for (name, member) in object { copy[name] = placeholding(member, into: &attachments) }
            return .object(copy)
        default:
            return value
        }
    }

    private static func restoring(_ value: JSONValue, from attachments: [ByteBuffer]) -> JSONValue? {
        switch value {
        case .array(let values):
            var restored: [JSONValue] = []
            restored.reserveCapacity(values.count)
            for element in values {
                guard let element = restoring(element, from: attachments) else { return nil }
                restored.append(element)
            }
            return .array(restored)
        case .object(let object):
            if object.count == 2, object["_placeholder"] == .bool(true), let number = object["num"]?.numberValue {
                guard number >= 0, number < Double(attachments.count), number.rounded() == number else { return nil }
                return .binary(attachments[Int(number)])
            }
            var copy = JSONObject()
            for (name, member) in object {
                guard let member = restoring(member, from: attachments) else { return nil }
                copy[name] = member
            }
            return .object(copy)
        default:
            return value
        }
    }
}
