import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Why a Redis command got no answer.
public enum RedisError: Error, Equatable, Sendable {
    /// No answer within the command's timeout.
    case timeout
    /// The connection is closed (or could not be opened).
    case disconnected
    /// Redis answered with an error.
    case server(String)
}

/// One connection to Redis. Commands are pipelined: each is written at once and answered
/// in order; every one is bounded by a timeout. In subscribe mode (after `SUBSCRIBE`) the
/// connection hands published messages to `onMessage` instead.
public final class RedisConnection: Sendable {
    let channel: any Channel
    private let handler: NIOLoopBound<RedisCommandHandler>

    /// Connects to `host:port`. `onMessage` receives `(channel, payload)` of messages
    /// published to the channels this connection subscribes to; `onClose` hears of the end.
    public static func connect(
        host: String, port: Int, group: any EventLoopGroup, timeout: TimeAmount = .seconds(5),
        onMessage: (@Sendable (String, ByteBuffer) -> Void)? = nil,
        onClose: (@Sendable () -> Void)? = nil
    ) -> EventLoopFuture<RedisConnection> {
        ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(timeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(RESPDecoder()))
                    try channel.pipeline.syncOperations.addHandler(RedisCommandHandler(onMessage: onMessage, onClose: onClose))
                }
            }
            .connect(host: host, port: port)
            .flatMapThrowing { channel in
                let handler = try channel.pipeline.syncOperations.handler(type: RedisCommandHandler.self)
                return RedisConnection(channel: channel, handler: NIOLoopBound(handler, eventLoop: channel.eventLoop))
            }
    }

    private init(channel: any Channel, handler: NIOLoopBound<RedisCommandHandler>) {
        self.channel = channel
        self.handler = handler
    }

    /// The event loop of the connection's channel.
    public var eventLoop: any EventLoop { channel.eventLoop }
    /// Whether the connection is open.
    public var isActive: Bool { channel.isActive }

    /// Sends a command; the future holds Redis's answer (an error answer fails it with
    /// `RedisError.server`), or fails after `timeout`.
    public func send(_ arguments: [ByteBuffer], timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        let handler = self.handler
        let channel = self.channel
        channel.eventLoop.execute {
            handler.value.send(arguments, promise: promise, channel: channel)
            let timer = channel.eventLoop.scheduleTask(in: timeout) { promise.fail(RedisError.timeout) }
            promise.futureResult.whenComplete { _ in timer.cancel() }
        }
        return promise.futureResult.flatMapThrowing { value in
            if case .error(let message) = value { throw RedisError.server(message) }
            return value
        }
    }

    /// Sends a command of text arguments (`send("GET", key)`); see `send(_:timeout:)`.
    public func send(_ arguments: String..., timeout: TimeAmount = .seconds(5)) -> EventLoopFuture<RESPValue> {
        send(arguments.map { ByteBuffer(string: $0) }, timeout: timeout)
    }

    /// Closes the connection; commands waiting for answers fail.
    public func close() {
        channel.close(promise: nil)
    }
}

/// Matches answers to commands, in order; routes published messages in subscribe mode.
final class RedisCommandHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = RESPValue

    private var pending = CircularBuffer<EventLoopPromise<RESPValue>>()
    private let onMessage: (@Sendable (String, ByteBuffer) -> Void)?
    private let onClose: (@Sendable () -> Void)?
    private var context: ChannelHandlerContext?

    init(onMessage: (@Sendable (String, ByteBuffer) -> Void)?, onClose: (@Sendable () -> Void)?) {
        self.onMessage = onMessage
        self.onClose = onClose
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }

    func send(_ arguments: [ByteBuffer], promise: EventLoopPromise<RESPValue>, channel: any Channel) {
        guard let context, channel.isActive else { return promise.fail(RedisError.disconnected) }
        var buffer = context.channel.allocator.buffer(capacity: arguments.reduce(16) { $0 + $1.readableBytes + 16 })
        RESPCommandEncoder.encode(arguments, into: &buffer)
        pending.append(promise)
        context.writeAndFlush(NIOAny(buffer), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let value = unwrapInboundIn(data)
        // A published message: ["message", channel, payload], not an answer to a command.
        if let onMessage, let parts = value.array, parts.count == 3, parts[0].string == "message",
            let name = parts[1].string, case .bulkString(let payload?) = parts[2]
        {
            onMessage(name, payload)
            return
        }
        guard let promise = pending.popFirst() else { return }  // a subscribe confirmation beyond the first
        promise.succeed(value)
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll()
        onClose?()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll()
        context.close(promise: nil)
    }

    private func failAll() {
        while let promise = pending.popFirst() { promise.fail(RedisError.disconnected) }
    }
}
