import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import SocketIO

/// The wire of `SocketIOTestClient` (and of this package's own tests, as `TestClient`): raw
/// bytes into a server's real pipeline over an in-process channel (`NIOAsyncTestingChannel`),
/// frames out, no sockets. Each client has its own event loop,
/// as clients of a real server spread over several; broadcasts from other loops reach it as
/// they would. What the test drives, the test controls: nothing happens on a client's loop
/// between two of its calls, and its clock stands still (no heartbeat fires).
package final class WireClient: @unchecked Sendable {
    // @unchecked Sendable: a client is driven by one test task at a time; the channel and
    // loop it wraps are thread-safe.

    package enum Frame: Equatable {
        case text(String)
        case binary([UInt8])
        case close(code: UInt16?)
    }

    package struct Timeout: Error, CustomStringConvertible {
        package let waitingFor: String
        package var description: String { "no \(waitingFor) within the time allowed" }
    }

    package let loop: NIOAsyncTestingEventLoop
    package let channel: NIOAsyncTestingChannel
    private var inbox = ByteBuffer()
    private var upgraded = false
    /// A wait for the server's next write that outlived its call (see `waitForWrite`).
    private var pendingWrite: Task<IOData, any Error>?

    private init(loop: NIOAsyncTestingEventLoop, channel: NIOAsyncTestingChannel) {
        self.loop = loop
        self.channel = channel
    }

    /// A WebSocket session with `server` (a direct WebSocket handshake), its open packet read.
    package static func webSocket(to server: SocketIOServer, path: String = "/socket.io/") async throws -> WireClient {
        let loop = NIOAsyncTestingEventLoop()
        let channel = NIOAsyncTestingChannel(loop: loop)
        try await loop.executeInContext { try server.engine.configureChannel(channel) }
        try await channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1))
        let client = WireClient(loop: loop, channel: channel)
        try await client.writeRaw(
            "GET \(path)?EIO=4&transport=websocket HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        try await client.readUpgradeResponse()
        guard case .text(let open) = try await client.next(), open.hasPrefix("0{") else { throw Timeout(waitingFor: "open packet") }
        return client
    }

    /// Joins `namespace` with `auth`; returns the CONNECT answer (`sid`, and `pid` with
    /// recovery on) or throws with the CONNECT_ERROR.
    @discardableResult
    package func connect(_ namespace: String = "/", auth: JSONObject? = nil) async throws -> JSONObject {
        let prefix = namespace == "/" ? "40" : "40\(namespace),"
        try await send(prefix + (auth.map { JSONValue.object($0).description } ?? ""))
        let answer = try await nextText()
        guard answer.hasPrefix(prefix) else { throw SocketIOConnectError(answer) }
        return try JSONParser.parse(String(answer.dropFirst(prefix.count))).objectValue ?? [:]
    }

    /// Sends one text frame (masked, as clients must) and lets the server handle it.
    package func send(_ text: String) async throws {
        try await channel.writeInbound(Self.frame(opcode: 0x1, Array(text.utf8)))
        await loop.run()
    }

    /// Sends one binary frame (an attachment of the last packet).
    package func sendBinary(_ bytes: [UInt8]) async throws {
        try await channel.writeInbound(Self.frame(opcode: 0x2, bytes))
        await loop.run()
    }

    /// The next frame from the server, waiting for it up to `timeout`.
    package func next(timeout: Duration = .seconds(5)) async throws -> Frame {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let frame = takeFrame() { return frame }
            await loop.run()
            while let data = try await channel.readOutbound(as: IOData.self) { append(data) }
            if let frame = takeFrame() { return frame }
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { throw Timeout(waitingFor: "frame") }
            // Writes from other loops and from tasks land while we wait.
            append(try await waitForWrite(within: remaining))
        }
    }

    /// The next text frame, answering pings on the way.
    package func nextText(timeout: Duration = .seconds(5)) async throws -> String {
        while true {
            switch try await next(timeout: timeout) {
            case .text("2"): try await send("3")
            case .text(let text): return text
            case let other: throw SocketIOConnectError("expected text, got \(other)")
            }
        }
    }

    /// The next `count` events' `[name, args…]` arrays, in order, skipping other packets.
    package func events(_ count: Int, namespace: String = "/") async throws -> [[JSONValue]] {
        let prefix = namespace == "/" ? "42" : "42\(namespace),"
        var events: [[JSONValue]] = []
        while events.count < count {
            let text = try await nextText()
            guard text.hasPrefix(prefix), let array = try JSONParser.parse(String(text.dropFirst(prefix.count))).arrayValue else { continue }
            events.append(array)
        }
        return events
    }

    /// Whether the server sends nothing more now (after its loop and every task has run).
    package func isQuiet(for duration: Duration = .milliseconds(50)) async throws -> Bool {
        do {
            _ = try await next(timeout: duration)
            return false
        } catch is Timeout {
            return true
        }
    }

    /// The link dies: no Socket.IO or WebSocket goodbye.
    package func cut() async throws {
        try await channel.close()
        await loop.run()
    }

    // MARK: Wire

    private func writeRaw(_ text: String) async throws {
        try await channel.writeInbound(ByteBuffer(string: text))
        await loop.run()
    }

    private func readUpgradeResponse() async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while inbox.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8)) == nil {
            guard ContinuousClock.now < deadline else { throw Timeout(waitingFor: "101") }
            append(try await waitForWrite(within: deadline - ContinuousClock.now))
        }
        let end = inbox.readableBytesView.firstRange(of: Array("\r\n\r\n".utf8))!.upperBound
        let head = inbox.readString(length: end - inbox.readerIndex)!
        guard head.hasPrefix("HTTP/1.1 101") else { throw SocketIOConnectError("upgrade refused: \(head)") }
        upgraded = true
    }

    private func append(_ data: IOData) {
        if case .byteBuffer(var buffer) = data { inbox.writeBuffer(&buffer) }
    }

    private func waitForWrite(within timeout: Duration) async throws -> IOData {
        // The channel's own wait cannot be cancelled: race it with a timer, first one wins.
        // A wait that lost to its timer is kept for the next call, or the write it takes
        // would be lost.
        let channel = self.channel
        let wait = pendingWrite ?? Task { try await channel.waitForOutboundWrite(as: IOData.self) }
        pendingWrite = wait
        let data = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<IOData, any Error>) in
            let resumed = NIOLockedValueBox(false)
            let resume: @Sendable (Result<IOData, any Error>) -> Void = { result in
                guard resumed.withLockedValue({ done in defer { done = true }; return !done }) else { return }
                continuation.resume(with: result)
            }
            Task { resume(await wait.result) }
            Task {
                try? await Task.sleep(for: timeout)
                resume(.failure(Timeout(waitingFor: "write")))
            }
        }
        pendingWrite = nil
        return data
    }

    /// Takes one complete server frame (unmasked) from the inbox.
    private func takeFrame() -> Frame? {
        let bytes = inbox.readableBytesView
        guard upgraded, bytes.count >= 2 else { return nil }
        let start = bytes.startIndex
        let opcode = bytes[start] & 0x0F
        var length = Int(bytes[start + 1] & 0x7F)
        var header = 2
        if length == 126 {
            guard bytes.count >= 4 else { return nil }
            length = Int(bytes[start + 2]) << 8 | Int(bytes[start + 3])
            header = 4
        } else if length == 127 {
            guard bytes.count >= 10 else { return nil }
            length = (0..<8).reduce(0) { $0 << 8 | Int(bytes[start + 2 + $1]) }
            header = 10
        }
        guard bytes.count >= header + length else { return nil }
        let payload = Array(bytes[(start + header)..<(start + header + length)])
        inbox.moveReaderIndex(forwardBy: header + length)
        switch opcode {
        case 0x1: return .text(String(decoding: payload, as: UTF8.self))
        case 0x2: return .binary(payload)
        case 0x8: return .close(code: payload.count >= 2 ? UInt16(payload[0]) << 8 | UInt16(payload[1]) : nil)
        default: return takeFrame()  // a pong: nothing for the tests
        }
    }

    package static func frame(opcode: UInt8, _ payload: [UInt8]) -> ByteBuffer {
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var buffer = ByteBuffer()
        buffer.writeInteger(0x80 | opcode)
        if payload.count < 126 {
            buffer.writeInteger(0x80 | UInt8(payload.count))
        } else if payload.count <= 0xFFFF {
            buffer.writeInteger(UInt8(0x80 | 126))
            buffer.writeInteger(UInt16(payload.count))
        } else {
            buffer.writeInteger(UInt8(0x80 | 127))
            buffer.writeInteger(UInt64(payload.count))
        }
        buffer.writeBytes(mask)
        buffer.writeBytes(payload.enumerated().map { $0.element ^ mask[$0.offset % 4] })
        return buffer
    }
}
