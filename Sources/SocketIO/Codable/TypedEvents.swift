import Logging
import Metrics
import NIOCore

/// The acknowledgement a typed event handler answers with: an `Encodable` reply, encoded
/// straight to the ack's argument. Only the first answer is sent; a client that asked for
/// none gets nothing (`isRequested` tells).
public struct Ack<Reply: Encodable>: Sendable {
    let ack: SocketIOAck?

    /// Whether the client asked for an answer.
    public var isRequested: Bool { ack != nil }

    /// Answers with `reply` (`ack(Receipt(id: 7))`).
    public func callAsFunction(_ reply: Reply) {
        send(reply)
    }

    /// Answers with `reply`: one ack argument, encoded with `JSONValueEncoder`. A reply that
    /// does not encode (a NaN, an integer beyond 2^53) is a bug of the server's, logged; the
    /// client then gets no answer, as for a lost one, and its retries resend.
    public func send(_ reply: Reply) {
        guard let ack else { return }
        do {
            ack.send([try JSONValueEncoder().encode(reply)])
        } catch {
            TypedEvents.logger.error("an ack did not encode", metadata: ["error": "\(error)"])
        }
    }
}

/// What a typed handler answers when the client's arguments do not decode, if the client
/// asked for an answer: `{"error": "…"}`, as the handler's own refusals usually are.
public struct TypedEventError: Error, Sendable, CustomStringConvertible {
    /// Which argument, and why.
    public let description: String
}

enum TypedEvents {
    static let logger = Logger(label: "socket.io.typed")
    /// Events whose arguments did not decode into a handler's types.
    static let undecodable = Counter(label: "socketio_events_undecodable_total")

    /// Decodes the arguments into the handler's types, in order; a missing trailing argument
    /// decodes as `nil` for an optional type, and is an error otherwise.
    static func decode<each Argument: Decodable & SendableMetatype>(_ arguments: [JSONValue], as types: repeat (each Argument).Type) throws -> (repeat each Argument) {
        let decoder = JSONValueDecoder()
        var index = 0
        func next<T: Decodable>(_ type: T.Type) throws -> T {
            defer { index += 1 }
            do {
                return try decoder.decode(type, from: index < arguments.count ? arguments[index] : .null)
            } catch {
                let missing = index >= arguments.count
                throw TypedEventError(description: missing ? "argument \(index + 1) is missing" : "argument \(index + 1): \(Self.reason(error))")
            }
        }
        return (repeat try next((each Argument).self))
    }

    /// Encodes the values as an event's arguments, in order.
    static func encode<each Value: Encodable>(_ values: repeat each Value) throws -> [JSONValue] {
        let encoder = JSONValueEncoder()
        var arguments: [JSONValue] = []
        for value in repeat each values {
            arguments.append(try encoder.encode(value))
        }
        return arguments
    }

    /// The defined path for arguments that do not decode: an error ack where one was asked
    /// for, and in any case a counted, logged drop. Never a crash.
    static func refuse(_ event: SocketIOEvent, _ error: any Error) {
        undecodable.increment()
        logger.debug("event arguments did not decode", metadata: ["event": "\(event.name)", "socket": "\(event.socket.id)", "error": "\(error)"])
        event.ack?(["error": .string("invalid arguments: \(error)")])
    }

    private static func reason(_ error: any Error) -> String {
        switch error {
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context),
            DecodingError.keyNotFound(_, let context), DecodingError.dataCorrupted(let context):
            let path = context.codingPath.map(\.stringValue).joined(separator: ".")
            return path.isEmpty ? context.debugDescription : "\(path): \(context.debugDescription)"
        default:
            return "\(error)"
        }
    }
}

// The typed overloads are disfavoured: where a call also fits the `JSONValue` ones (a
// dictionary or array literal of `JSONValue`s, say), it keeps going through them, encoded as
// written and never through a coder.

extension SocketIOSocket {
    /// Handles the event `name` with its arguments decoded into the handler's parameter
    /// types (any `Decodable`: a `String`, a struct, `Data` for a binary attachment), in
    /// order. Arguments that do not decode never reach the handler: the client gets
    /// `{"error": "invalid arguments: …"}` if it asked for an answer, and the event is counted
    /// (`socketio_events_undecodable_total`) and logged.
    ///
    /// ```swift
    /// socket.on("move") { (position: Position) in … }
    /// ```
    @_disfavoredOverload
    public func on<each Argument: Decodable & SendableMetatype>(_ name: String, _ handler: @escaping @Sendable (repeat each Argument) -> Void) {
        // Not through `onDecoded`: a closure that forwards a pack it is handed crashes Swift 6.3.
        on(name) { (event: SocketIOEvent) in
            let arguments: (repeat each Argument)
            do {
                arguments = try TypedEvents.decode(event.arguments, as: repeat (each Argument).self)
            } catch {
                return TypedEvents.refuse(event, error)
            }
            handler(repeat each arguments)
        }
    }

    /// Handles the event `name` with decoded arguments and a typed acknowledgement, the
    /// handler's last parameter: `ack(reply)` answers with an `Encodable` reply. (Up to four
    /// arguments before it; a handler that needs more takes one `Decodable` struct.)
    ///
    /// ```swift
    /// socket.on("chat message") { (text: String, offset: String, ack: Ack<Receipt>) in
    ///     ack(Receipt(id: store(text, offset)))
    /// }
    /// ```
    @_disfavoredOverload
    public func on<Reply: Encodable & SendableMetatype>(_ name: String, _ handler: @escaping @Sendable (Ack<Reply>) -> Void) {
        on(name) { (event: SocketIOEvent) in handler(Ack(ack: event.ack)) }
    }

    /// Handles the event `name` with one decoded argument and a typed acknowledgement.
    @_disfavoredOverload
    public func on<A: Decodable & SendableMetatype, Reply: Encodable & SendableMetatype>(_ name: String, _ handler: @escaping @Sendable (A, Ack<Reply>) -> Void) {
        onDecoded(name, as: A.self, then: { event, a in handler(a, Ack(ack: event.ack)) })
    }

    /// Handles the event `name` with two decoded arguments and a typed acknowledgement.
    @_disfavoredOverload
    public func on<A: Decodable & SendableMetatype, B: Decodable & SendableMetatype, Reply: Encodable & SendableMetatype>(_ name: String, _ handler: @escaping @Sendable (A, B, Ack<Reply>) -> Void) {
        onDecoded(name, as: A.self, B.self, then: { event, a, b in handler(a, b, Ack(ack: event.ack)) })
    }

    /// Handles the event `name` with three decoded arguments and a typed acknowledgement.
    @_disfavoredOverload
    public func on<A: Decodable & SendableMetatype, B: Decodable & SendableMetatype, C: Decodable & SendableMetatype, Reply: Encodable & SendableMetatype>(
        _ name: String, _ handler: @escaping @Sendable (A, B, C, Ack<Reply>) -> Void
    ) {
        onDecoded(name, as: A.self, B.self, C.self, then: { event, a, b, c in handler(a, b, c, Ack(ack: event.ack)) })
    }

    /// Handles the event `name` with four decoded arguments and a typed acknowledgement.
    @_disfavoredOverload
    public func on<A: Decodable & SendableMetatype, B: Decodable & SendableMetatype, C: Decodable & SendableMetatype, D: Decodable & SendableMetatype, Reply: Encodable & SendableMetatype>(
        _ name: String, _ handler: @escaping @Sendable (A, B, C, D, Ack<Reply>) -> Void
    ) {
        onDecoded(name, as: A.self, B.self, C.self, D.self, then: { event, a, b, c, d in handler(a, b, c, d, Ack(ack: event.ack)) })
    }

    /// Decodes the arguments, then calls `handler` with the event and them; or refuses them.
    private func onDecoded<each Argument: Decodable & SendableMetatype>(
        _ name: String, as types: repeat (each Argument).Type, then handler: @escaping @Sendable (SocketIOEvent, repeat each Argument) -> Void
    ) {
        on(name) { (event: SocketIOEvent) in
            let arguments: (repeat each Argument)
            do {
                arguments = try TypedEvents.decode(event.arguments, as: repeat (each Argument).self)
            } catch {
                return TypedEvents.refuse(event, error)
            }
            handler(event, repeat each arguments)
        }
    }

    /// Emits an event with `Encodable` arguments, each encoded straight to its JSON value
    /// (`Data` and `ByteBuffer` as binary attachments). Throws `EncodingError` for a value
    /// JSON cannot carry, before anything is sent.
    @_disfavoredOverload
    public func emit<each Value: Encodable>(_ event: String, _ values: repeat each Value) throws {
        emit(event, arguments: try TypedEvents.encode(repeat each values))
    }

    /// Emits an event with `Encodable` arguments and decodes the client's answer (its first
    /// argument) as `Reply`; throws `SocketIOAckError` when none comes in `timeout`, and a
    /// `DecodingError` for an answer of another shape.
    public func emitWithAck<Reply: Decodable, each Value: Encodable>(
        _ event: String, _ values: repeat each Value, replyAs replyType: Reply.Type = Reply.self, timeout: TimeAmount
    ) async throws -> Reply {
        let arguments = try TypedEvents.encode(repeat each values)
        let answer = try await withCheckedThrowingContinuation { continuation in
            emit(event, arguments: arguments, timeout: timeout) { continuation.resume(with: $0) }
        }
        return try JSONValueDecoder().decode(replyType, from: answer.first ?? .null)
    }
}

extension BroadcastOperator {
    /// Broadcasts an event with `Encodable` arguments, encoded once for every recipient.
    @_disfavoredOverload
    public func emit<each Value: Encodable>(_ event: String, _ values: repeat each Value) throws {
        emit(event, arguments: try TypedEvents.encode(repeat each values))
    }
}

extension SocketIONamespace {
    /// Emits an event with `Encodable` arguments to every socket of the namespace.
    @_disfavoredOverload
    public func emit<each Value: Encodable>(_ event: String, _ values: repeat each Value) throws {
        emit(event, arguments: try TypedEvents.encode(repeat each values))
    }
}
