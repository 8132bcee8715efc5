import NIOCore
import SocketIO

extension SocketIOSocket {
    /// The socket as the admin UI shows it (the reference's `serialize`). Read on the
    /// socket's event loop (its rooms and data live there).
    func adminDescription() -> JSONValue {
        let headers = handshake.headers
        var headerObject = JSONObject()
        for (name, value) in headers {
            let key = name.lowercased()
            if case .string(let earlier)? = headerObject[key] {
                headerObject[key] = .string(earlier + ", " + value)
            } else {
                headerObject[key] = .string(value)
            }
        }
        // Behind a proxy, the client's own address is the proxy's header, as the reference reads it.
        let address =
            headers.first(name: "cf-connecting-ip") ?? headers.first(name: "x-forwarded-for") ?? handshake.address?.ipAddress ?? ""
        var query = JSONObject()
        for (name, value) in handshake.query.sorted(by: { $0.key < $1.key }) { query[name] = .string(value) }
        // Its own room first, then the others in order: a stable list for the UI.
        let others = rooms.subtracting([id]).sorted()
        let handshakeObject: JSONObject = [
            "address": .string(address),
            "headers": .object(headerObject),
            "query": .object(query),
            "issued": .number(Double(handshake.issued)),
            "secure": .bool(headers.first(name: "x-forwarded-proto") == "https"),
            "time": .string(AdminClock.iso8601(milliseconds: handshake.issued)),
            "url": .string(handshake.url),
            "xdomain": .bool(headers.first(name: "origin") != nil),
        ]
        return [
            "id": .string(id),
            // The reference shows only the start of the connection's id: all of it would let
            // whoever reads the UI act as the client.
            "clientId": .string(String(clientID.prefix(12))),
            "transport": .string(transport?.rawValue ?? "polling"),
            "nsp": .string(namespace.name),
            "data": data == .null ? [:] : data,
            "handshake": .object(handshakeObject),
            "rooms": .array(([id] + others).map(JSONValue.string)),
        ]
    }
}
