import NIOCore
import NIOHTTP1
import HTTPCommon
import SocketIO

/// `GET /messages?after=ID&limit=N`: the history as JSON, a page at a time (the PHP chat's
/// get_messages endpoint). Answers `{"messages":[{id, username, content, created_at}…],
/// "next_after": ID}`; `next_after` is the `after` of the next page (null on the last).
///
/// `GET /messages?before=ID&limit=N` reads backwards: the newest N messages below ID, in
/// id order, with `next_before` for the page before them (null on the first page);
/// `before=end` is the latest page. A page costs the same in a room of any size.
public struct ChatHistory: Sendable {
    public static let defaultLimit = 50
    public static let maxLimit = 500

    let store: any MessageStore

    public init(store: any MessageStore) {
        self.store = store
    }

    public func respond(query: [String: String]) async -> HTTPResponse {
        var limit = Self.defaultLimit
        if let text = query["limit"] {
            guard let value = Int(text), (1...Self.maxLimit).contains(value) else {
                return Self.badRequest("limit must be an integer from 1 to \(Self.maxLimit)")
            }
            limit = value
        }
        if let text = query["before"] {
            guard query["after"] == nil else { return Self.badRequest("after and before cannot be combined") }
            let before: Int64
            if text == "end" {
                before = .max
            } else {
                guard let value = Int64(text), value > 0 else { return Self.badRequest("before must be a positive integer or end") }
                before = value
            }
            return await page(limit: limit, nextKey: "next_before", next: \.first) {
                try await store.messages(before: before, limit: limit)
            }
        }
        var after: Int64 = 0
        if let text = query["after"] {
            guard let value = Int64(text), value >= 0 else { return Self.badRequest("after must be a non-negative integer") }
            after = value
        }
        return await page(limit: limit, nextKey: "next_after", next: \.last) {
            try await store.messages(after: after, limit: limit)
        }
    }

    /// Reads a page; a full one names where the next starts (`next` of its messages).
    private func page(
        limit: Int, nextKey: String, next: ([StoredMessage]) -> StoredMessage?, _ read: () async throws -> [StoredMessage]
    ) async -> HTTPResponse {
        do {
            let messages = try await read()
            let following: JSONValue = messages.count == limit ? next(messages).map { .number(Double($0.id)) } ?? .null : .null
            return Self.json(.ok, ["messages": .array(messages.map(\.json)), .init(nextKey): following])
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
