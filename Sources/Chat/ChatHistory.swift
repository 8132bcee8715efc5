import NIOCore
import NIOHTTP1
import HTTPCommon
import SocketIO

/// `GET /messages?after=ID&limit=N`: the history as JSON, a page at a time (the PHP chat's
/// get_messages endpoint). Answers `{"messages":[{id, username, content, created_at}…],
/// "next_after": ID}`; `next_after` is the `after` of the next page (null on the last).
public struct ChatHistory: Sendable {
    public static let defaultLimit = 50
    public static let maxLimit = 500

    let store: any MessageStore

    public init(store: any MessageStore) {
        self.store = store
    }

    public func respond(query: [String: String]) async -> HTTPResponse {
        var after: Int64 = 0
        var limit = Self.defaultLimit
        if let text = query["after"] {
            guard let value = Int64(text), value >= 0 else { return Self.badRequest("after must be a non-negative integer") }
            after = value
        }
        if let text = query["limit"] {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                return Self.badRequest("limit must be an integer from 1 to \(Self.maxLimit)")
            }
            limit = value
        }
        do {
            let messages = try await store.messages(after: after, limit: limit)
            let items: [JSONValue] = messages.map { message in
                [
                    "id": .number(Double(message.id)),
                    "username": message.username.map(JSONValue.string) ?? .null,
                    "content": .string(message.content),
                    "created_at": .string(message.createdAt),
                ]
            }
            let next: JSONValue = messages.count == limit ? .number(Double(messages.last!.id)) : .null
            return Self.json(.ok, ["messages": .array(items), "next_after": next])
        } catch {
            return Self.json(.serviceUnavailable, ["error": "the database is unavailable"])
        }
    }

    static func badRequest(_ message: String) -> HTTPResponse {
        json(.badRequest, ["error": .string(message)])
    }

    public static func json(_ status: HTTPResponseStatus, _ value: JSONValue) -> HTTPResponse {
        var headers = HTTPHeaders()
        headers.add(name: "content-type", value: "application/json; charset=utf-8")
        return HTTPResponse(status: status, headers: headers, body: ByteBuffer(string: value.description))
    }
}
