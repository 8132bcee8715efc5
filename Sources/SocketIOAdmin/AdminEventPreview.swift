import SocketIO

/// What the admin UI is shown of an event: the event itself when it is small, its name and
/// its size otherwise. In development mode every event sent is reported once per recipient,
/// so a client's megabyte broadcast to a thousand sockets would otherwise queue a gigabyte
/// for each admin UI; the reference reports every event whole.
enum AdminEventPreview {
    /// `event` (`[name, arguments…]`) if its arguments come to at most `limit` bytes of
    /// JSON, else its name and a note of their size. Looks at no more than about `limit`
    /// bytes of it, however large it is.
    static func of(_ event: [JSONValue], limit: Int) -> [JSONValue] {
        var budget = limit
        for argument in event.dropFirst() {
            guard fits(argument, within: &budget) else {
                return Array(event.prefix(1)) + [.string("(arguments over \(limit) bytes, not shown)")]
            }
        }
        return event
    }

    /// Takes `value`'s size in JSON (about) from `budget`; false as soon as it runs out.
    private static func fits(_ value: JSONValue, within budget: inout Int) -> Bool {
        switch value {
        case .null, .bool: budget -= 5
        case .number: budget -= 8
        case .string(let string): budget -= string.utf8.count + 2
        case .binary(let bytes): budget -= bytes.readableBytes
        case .array(let elements):
            budget -= 2
            for element in elements {
                guard budget >= 0, fits(element, within: &budget) else { return false }
                budget -= 1
            }
        case .object(let object):
            budget -= 2
            for (key, element) in object {
                budget -= key.utf8.count + 4
                guard budget >= 0, fits(element, within: &budget) else { return false }
            }
        }
        return budget >= 0
    }
}
