import SocketIO

/// A socket's session as kept in Redis: JSON text of its id, pid, rooms (each with the
/// offset it took effect from) and data, binary values kept (`ClusterJSON`).
enum SessionRecord {
    static func text(_ session: PersistedSessionInfo) -> String {
        var rooms = JSONObject()
        for (room, since) in session.rooms.since { rooms[room] = .number(Double(since)) }
        let record: JSONValue = ["id": .string(session.id), "pid": .string(session.pid), "rooms": .object(rooms), "data": ClusterJSON.wrap(session.data)]
        return record.jsonText
    }

    static func session(_ text: String) -> PersistedSessionInfo? {
        guard let record = (try? JSONParser.parse(text))?.objectValue,
            let id = record["id"]?.stringValue, let pid = record["pid"]?.stringValue,
            let rooms = record["rooms"]?.objectValue, let data = ClusterJSON.unwrap(record["data"] ?? .null)
        else { return nil }
        var since: [String: UInt64] = [:]
        for (room, value) in rooms {
            guard let number = value.numberValue, number >= 0, number < 0x20_0000_0000_0000 else { return nil }
            since[room] = UInt64(number)
        }
        return PersistedSessionInfo(id: id, pid: pid, rooms: RoomMemberships(since: since), data: data)
    }
}
