import NIOCore
import SocketIO

/// A Socket.IO client for unit tests of an app's handlers, in process: it drives a real
/// `SocketIOServer` (its namespaces, middlewares, handlers, rooms, recovery) through the
/// server's own pipeline over an in-memory channel, with no sockets and no port.
///
/// ```swift
/// let client = try await SocketIOTestClient.connect(to: io, auth: ["username": "ada"])
/// let receipt = try await client.emitWithAck("chat message", "hi", "ada-1", replyAs: Receipt.self)
/// let event = try await client.nextEvent(named: "chat message")
/// try await client.dropConnection()            // a lost link, as the client sees it
/// try await client.reconnect()                 // recovered, with what it missed
/// ```
///
/// A client is driven by one test task at a time. It answers the server's pings itself; its
/// clock does not run, so no heartbeat fails while a test thinks.
public final class SocketIOTestClient: @unchecked Sendable {
    // @unchecked Sendable: a client is driven by one test task at a time (its methods are
    // async and awaited in turn); the wire it wraps is safe to reach from any thread.

    /// An event the server sent: its name and arguments (without a recovery offset), and an
    /// answer to give if the server asked for one.
    public struct Event: Sendable {
        /// The event's name.
        public let name: String
        /// The arguments after the name; a trailing recovery offset is in `offset`, not here.
        public let arguments: [JSONValue]
        /// The connection-state recovery offset the event carried, if any.
        public let offset: String?
        let ackID: Int?
        let client: SocketIOTestClient

        /// Whether the server waits for an acknowledgement.
        public var wantsAck: Bool { ackID != nil }

        /// The arguments decoded into `type`s, in order, as a typed handler would receive them.
        public func decode<each Argument: Decodable>(as types: repeat (each Argument).Type) throws -> (repeat each Argument) {
            let decoder = JSONValueDecoder()
            var index = 0
            func next<T: Decodable>(_ type: T.Type) throws -> T {
                defer { index += 1 }
                return try decoder.decode(type, from: index < arguments.count ? arguments[index] : .null)
            }
            return (repeat try next((each Argument).self))
        }

        /// Answers the server's acknowledgement request with `arguments`.
        public func ack(_ arguments: JSONValue...) async throws {
            guard let ackID else { return }
            try await client.send(type: 3, id: ackID, [JSONValue](arguments))
        }
    }

    /// The error a test client throws: what did not come, or what came instead.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong.
        public let description: String
    }

    private let server: SocketIOServer
    private let namespace: String
    private let auth: JSONObject?
    private var wire: WireClient
    private var nextAckID = 0
    private var pending: [Event] = []

    /// The socket's id (`socket.id` on the server).
    public private(set) var id: String
    /// The recovery session id, with connection-state recovery on.
    public private(set) var pid: String?
    /// The last recovery offset received: what `reconnect()` asks to recover from.
    public private(set) var lastOffset: String?
    /// Whether the last connection restored the session (`socket.recovered`).
    public private(set) var recovered = false

    private init(server: SocketIOServer, namespace: String, auth: JSONObject?, wire: WireClient, answer: JSONObject) {
        self.server = server
        self.namespace = namespace
        self.auth = auth
        self.wire = wire
        self.id = answer["sid"]?.stringValue ?? ""
        self.pid = answer["pid"]?.stringValue
    }

    /// Connects to `namespace` of `server` with `auth` (the client's `auth` option), over a
    /// WebSocket. Throws `SocketIOConnectError` when a middleware refuses.
    public static func connect(to server: SocketIOServer, namespace: String = "/", auth: JSONObject? = nil) async throws -> SocketIOTestClient {
        let wire = try await WireClient.webSocket(to: server, path: server.engine.configuration.path)
        let answer = try await wire.connect(namespace, auth: auth)
        return SocketIOTestClient(server: server, namespace: namespace, auth: auth, wire: wire, answer: answer)
    }

    // MARK: Emitting

    /// Emits an event with these arguments.
    public func emit(_ event: String, _ arguments: JSONValue...) async throws {
        try await send(type: 2, id: nil, [.string(event)] + arguments)
    }

    /// Emits an event with `Encodable` arguments.
    @_disfavoredOverload
    public func emit<each Value: Encodable>(_ event: String, _ values: repeat each Value) async throws {
        try await send(type: 2, id: nil, [.string(event)] + encode(repeat each values))
    }

    /// Emits an event and waits for the server's acknowledgement; events that arrive
    /// meanwhile are kept for `nextEvent`.
    public func emitWithAck(_ event: String, _ arguments: JSONValue..., timeout: Duration = .seconds(5)) async throws -> [JSONValue] {
        try await request([.string(event)] + arguments, timeout: timeout)
    }

    /// Emits an event with `Encodable` arguments and decodes the acknowledgement's first
    /// argument as `Reply`.
    public func emitWithAck<Reply: Decodable, each Value: Encodable>(
        _ event: String, _ values: repeat each Value, replyAs replyType: Reply.Type = Reply.self, timeout: Duration = .seconds(5)
    ) async throws -> Reply {
        let answer = try await request([.string(event)] + encode(repeat each values), timeout: timeout)
        return try JSONValueDecoder().decode(replyType, from: answer.first ?? .null)
    }

    // MARK: Receiving

    /// The next event the server sends (named `name`, if given: others before it are kept
    /// for later calls), waiting up to `timeout`.
    public func nextEvent(named name: String? = nil, timeout: Duration = .seconds(5)) async throws -> Event {
        if let index = pending.firstIndex(where: { name == nil || $0.name == name }) {
            return pending.remove(at: index)
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw Failure(description: "no \(name.map { "\"\($0)\"" } ?? "") event within \(timeout)") }
            guard let event = try await readPacket(timeout: remaining).event else { continue }
            if name == nil || event.name == name { return event }
            pending.append(event)
        }
    }

    /// Whether the server sends nothing more now (after its loops and tasks have run).
    public func isQuiet(for duration: Duration = .milliseconds(50)) async throws -> Bool {
        guard pending.isEmpty else { return false }
        return try await wire.isQuiet(for: duration)
    }

    // MARK: The link

    /// The link dies, without a Socket.IO or WebSocket goodbye: the server keeps the session
    /// for recovery (with connection-state recovery on).
    public func dropConnection() async throws {
        try await wire.cut()
    }

    /// Leaves the namespace, as the client's `disconnect()`: the session is not kept.
    public func disconnect() async throws {
        let prefix = namespace == "/" ? "41" : "41\(namespace),"
        try await wire.send(prefix)
        try await wire.cut()
    }

    /// Connects again, on a new connection. With `recover` (and a `pid` and offset to recover
    /// from), asks for the session back, as the official client does; `recovered` says
    /// whether it came back with the same id and what it missed, which `nextEvent` then
    /// returns.
    @discardableResult
    public func reconnect(recover: Bool = true) async throws -> Bool {
        var auth = self.auth ?? JSONObject()
        if recover, let pid, let lastOffset {
            auth["pid"] = .string(pid)
            auth["offset"] = .string(lastOffset)
        }
        wire = try await WireClient.webSocket(to: server, path: server.engine.configuration.path)
        pending = []
        let prefix = namespace == "/" ? "40" : "40\(namespace),"
        try await wire.send(prefix + JSONValue.object(auth).description)
        // With recovery, the missed packets may come before the CONNECT answer.
        while true {
            let text = try await wire.nextText()
            if text.hasPrefix(prefix + "{") {
                let answer = try JSONParser.parse(String(text.dropFirst(prefix.count))).objectValue ?? [:]
                recovered = answer["sid"]?.stringValue == id && recover
                id = answer["sid"]?.stringValue ?? id
                pid = answer["pid"]?.stringValue ?? pid
                return recovered
            }
            if text.hasPrefix("44") { throw SocketIOConnectError(text) }
            if let event = try parse(text).event { pending.append(event) }
        }
    }

    // MARK: Wire

    private struct Packet {
        var type: Int
        var id: Int?
        var data: JSONValue?
        var event: Event?
    }

    private func request(_ data: [JSONValue], timeout: Duration) async throws -> [JSONValue] {
        let id = nextAckID
        nextAckID += 1
        try await send(type: 2, id: id, data)
        let deadline = ContinuousClock.now + timeout
        while true {
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw Failure(description: "no acknowledgement within \(timeout)") }
            let packet = try await readPacket(timeout: remaining)
            if packet.type == 3, packet.id == id { return packet.data?.arrayValue ?? [] }
            if let event = packet.event { pending.append(event) }
        }
    }

    fileprivate func send(type: Int, id: Int?, _ data: [JSONValue]) async throws {
        let prefix = namespace == "/" ? "4\(type)" : "4\(type)\(namespace),"
        try await wire.send(prefix + (id.map(String.init) ?? "") + JSONValue.array(data).description)
    }

    private func encode<each Value: Encodable>(_ values: repeat each Value) throws -> [JSONValue] {
        let encoder = JSONValueEncoder()
        var arguments: [JSONValue] = []
        for value in repeat each values { arguments.append(try encoder.encode(value)) }
        return arguments
    }

    private func readPacket(timeout: Duration) async throws -> Packet {
        try parse(try await wire.nextText(timeout: timeout))
    }

    /// Parses a Socket.IO packet of this client's namespace (`4` + type, `/nsp,`, id, JSON).
    private func parse(_ text: String) throws -> Packet {
        var rest = Substring(text)
        guard rest.first == "4", let type = rest.dropFirst().first?.wholeNumberValue else { return Packet(type: -1) }
        rest = rest.dropFirst(2)
        if rest.first == "/" {
            guard let comma = rest.firstIndex(of: ",") else { return Packet(type: type) }
            guard rest[..<comma] == namespace else { return Packet(type: -1) }
            rest = rest[rest.index(after: comma)...]
        } else if namespace != "/" {
            return Packet(type: -1)
        }
        let digits = rest.prefix { $0.isNumber }
        rest = rest.dropFirst(digits.count)
        let data: JSONValue? = rest.isEmpty ? nil : try JSONParser.parse(String(rest))
        var packet = Packet(type: type, id: Int(digits), data: data)
        if type == 2, case .array(let array)? = data, case .string(let name)? = array.first {
            var arguments = Array(array.dropFirst())
            var offset: String?
            if packet.id == nil, pid != nil, case .string(let last)? = arguments.last {
                // With recovery on, an event without an ack ends with its offset.
                offset = last
                lastOffset = last
                arguments.removeLast()
            }
            packet.event = Event(name: name, arguments: arguments, offset: offset, ackID: packet.id, client: self)
        }
        return packet
    }
}
