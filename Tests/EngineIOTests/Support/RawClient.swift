import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A client over a real socket that writes raw HTTP and WebSocket bytes and reads what comes
/// back: enough to drive servers listening on ports, as a balancer's clients would.
final class RawClient: Sendable {
    struct Response {
        var status: Int
        var body: String
    }

    struct Timeout: Error {}

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let inbox = NIOLockedValueBox(ByteBuffer())
        let closed = NIOLockedValueBox(false)
        /// Waiting for the next read (or the end), by a number of their own.
        private let waiters = NIOLockedValueBox<(next: Int, reads: Int, waiting: [Int: CheckedContinuation<Void, Never>])>((0, 0, [:]))

        /// How many reads (and ends) there have been.
        var reads: Int { waiters.withLockedValue { $0.reads } }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var buffer = unwrapInboundIn(data)
            _ = inbox.withLockedValue { $0.writeBuffer(&buffer) }
            wake()
        }
        func channelInactive(context: ChannelHandlerContext) {
            closed.withLockedValue { $0 = true }
            wake()
        }

        private func wake() {
            let woken = waiters.withLockedValue { state in
                state.reads += 1
                defer { state.waiting = [:] }
                return Array(state.waiting.values)
            }
            for waiter in woken { waiter.resume() }
        }

        /// Returns once there have been more than `seen` reads, or on cancellation.
        func read(after seen: Int) async {
            let number = waiters.withLockedValue { state in
                defer { state.next += 1 }
                return state.next
            }
            await withTaskCancellationHandler {
                await withCheckedContinuation { continuation in
                    let cancelled = waiters.withLockedValue { state in
                        if Task.isCancelled || state.reads > seen { return true }
                        state.waiting[number] = continuation
                        return false
                    }
                    if cancelled { continuation.resume() }
                }
            } onCancel: {
                waiters.withLockedValue { $0.waiting.removeValue(forKey: number) }?.resume()
            }
        }
    }

    private let channel: any Channel
    private let collector: Collector

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
    }

    static func connect(port: Int) async throws -> RawClient {
        let collector = Collector()
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { $0.pipeline.addHandler(collector) }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, collector: collector)
    }

    func write(_ text: String) async throws {
        try await channel.writeAndFlush(ByteBuffer(string: text))
    }

    func close() async {
        try? await channel.close()
    }

    var isClosed: Bool { collector.closed.withLockedValue { $0 } }

    /// Stops reading from the socket, so that the kernel's buffers fill and then the server's
    /// backlog grows, as behind a client that reads slowly; or reads again.
    func setReading(_ reading: Bool) async throws {
        try await channel.setOption(ChannelOptions.autoRead, value: reading).get()
    }

    /// Sends a request; with `wait` false, returns at once (read the answer with `response()`).
    func request(_ method: String, _ query: String, body: String = "") async throws {
        try await write("\(method) /socket.io/?\(query) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)")
    }

    /// The next complete response (by its Content-Length), or nil if none came in `timeout`.
    func response(within timeout: Duration = .seconds(5)) async throws -> Response? {
        try await waitFor(timeout) { inbox -> Response? in
            let bytes = Array(inbox.readableBytesView)
            guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound else { return nil }
            let head = String(decoding: bytes[..<end], as: UTF8.self)
            let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                .flatMap { Int($0.split(separator: ":")[1].filter { $0 != " " }) } ?? 0
            guard bytes.count >= end + length else { return nil }
            inbox.moveReaderIndex(forwardBy: end + length)
            let status = Int(head.split(separator: " ")[1])!
            return Response(status: status, body: String(decoding: bytes[end..<end + length], as: UTF8.self))
        }
    }

    func upgrade(_ query: String) async throws -> Bool {
        try await write(
            "GET /socket.io/?\(query) HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        let head = try await waitFor(.seconds(5)) { inbox -> String? in
            guard let end = Array(inbox.readableBytesView).firstRange(of: Array("\r\n\r\n".utf8))?.upperBound else { return nil }
            return inbox.readString(length: end)
        }
        return head?.hasPrefix("HTTP/1.1 101") == true
    }

    /// Sends a masked text frame.
    func send(_ text: String) async throws {
        let payload = Array(text.utf8)
        precondition(payload.count < 126)
        let mask: [UInt8] = [1, 2, 3, 4]
        var buffer = ByteBuffer()
        buffer.writeBytes([0x81, 0x80 | UInt8(payload.count)] + mask)
        buffer.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        try await channel.writeAndFlush(buffer)
    }

    enum Frame: Equatable {
        case text(String)
        case close(UInt16)
    }

    /// The next frame from the server (short frames only), or nil if none came in `timeout`.
    func frame(within timeout: Duration = .seconds(5)) async throws -> Frame? {
        try await waitFor(timeout) { inbox -> Frame? in
            let bytes = Array(inbox.readableBytesView)
            guard bytes.count >= 2, bytes[1] < 126, bytes.count >= 2 + Int(bytes[1]) else { return nil }
            let payload = Array(bytes[2..<2 + Int(bytes[1])])
            inbox.moveReaderIndex(forwardBy: 2 + payload.count)
            if bytes[0] & 0x0F == 0x8 { return .close(UInt16(payload[0]) << 8 | UInt16(payload[1])) }
            return .text(String(decoding: payload, as: UTF8.self))
        }
    }

    /// Waits until `take` finds what it looks for in the inbox, looking again after each
    /// read; nil if it is not there by the end of `timeout`.
    private func waitFor<T>(_ timeout: Duration, _ take: (inout ByteBuffer) -> T?) async throws -> T? {
        let deadline = ContinuousClock.now + timeout
        let collector = self.collector
        while true {
            let seen = collector.reads
            if let found = collector.inbox.withLockedValue({ take(&$0) }) { return found }
            guard ContinuousClock.now < deadline, !isClosed else { return nil }
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await collector.read(after: seen) }
                group.addTask { try? await Task.sleep(until: deadline) }
                await group.next()
                group.cancelAll()
            }
        }
    }
}
