import CompressNIO
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EngineIO

/// The channel handlers end to end on `EmbeddedChannel`s: raw HTTP and WebSocket bytes in,
/// raw bytes out, with the embedded event loop's clock driving the heartbeat.
@Suite struct EmbeddedServerTests {
    final class Recorder: EngineIOServerDelegate, @unchecked Sendable {
        // @unchecked Sendable: only touched on the one EmbeddedEventLoop of a test.
        var messages: [EngineIOMessage] = []
        var closeReasons: [EngineIOCloseReason] = []
        var sessions: [EngineIOSession] = []

        final class Handler: EngineIOSessionHandler {
            let recorder: Recorder
            init(_ recorder: Recorder) { self.recorder = recorder }
            func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) {
                recorder.messages.append(message)
                session.send(message)
            }
            func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) {
                recorder.closeReasons.append(reason)
            }
        }

        func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler {
            sessions.append(session)
            return Handler(self)
        }
    }

    let loop = EmbeddedEventLoop()
    let recorder = Recorder()
    let server: EngineIOServer

    init() {
        var configuration = EngineIOConfiguration()
        configuration.maxHttpBufferSize = 1000
        server = EngineIOServer(configuration: configuration, delegate: recorder)
    }

    func connection(to server: EngineIOServer? = nil) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: loop)
        try (server ?? self.server).configureChannel(channel)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return channel
    }

    func send(_ text: String, on channel: EmbeddedChannel) throws {
        try channel.writeInbound(ByteBuffer(string: text))
        loop.run()
    }

    func outbound(_ channel: EmbeddedChannel) throws -> [UInt8] {
        loop.run()
        var bytes: [UInt8] = []
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
            bytes += buffer.readableBytesView
        }
        while let region = try channel.readOutbound(as: IOData.self) {
            if case .byteBuffer(let buffer) = region { bytes += buffer.readableBytesView }
        }
        return bytes
    }

    struct Response {
        var status: Int
        var headers: [String: String]
        var body: String
        /// The body as sent (compressed or not).
        var bodyBytes: [UInt8] = []
    }

    func response(_ channel: EmbeddedChannel) throws -> Response? {
        let bytes = try outbound(channel)
        guard !bytes.isEmpty else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        let parts = text.split(separator: "\r\n\r\n", maxSplits: 1, omittingEmptySubsequences: false)
        let lines = parts[0].split(separator: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1])!
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            headers[pair[0].lowercased()] = pair[1].drop(while: { $0 == " " }).description
        }
        let headLength = parts[0].utf8.count + 4
        return Response(
            status: status, headers: headers, body: parts.count > 1 ? String(parts[1]) : "",
            bodyBytes: Array(bytes.dropFirst(headLength))
        )
    }

    func get(_ query: String, on channel: EmbeddedChannel, headers: String = "") throws -> Response? {
        try send("GET /socket.io/?\(query) HTTP/1.1\r\nHost: localhost\r\n\(headers)\r\n", on: channel)
        return try response(channel)
    }

    func post(_ query: String, body: String, on channel: EmbeddedChannel) throws -> Response? {
        try send("POST /socket.io/?\(query) HTTP/1.1\r\nHost: localhost\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)", on: channel)
        return try response(channel)
    }

    func handshake(on channel: EmbeddedChannel) throws -> String {
        let open = try #require(try get("EIO=4&transport=polling", on: channel))
        #expect(open.status == 200)
        let sid = open.body.split(separator: "\"")[3]
        return String(sid)
    }

    // MARK: Polling

    @Test func aHandshakeWithTwoThousandHeaders() throws {
        let channel = try connection()
        let headers = (0..<2000).map { "X-Header-\($0): value \($0)\r\n" }.joined()
        try send("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: localhost\r\n\(headers)\r\n", on: channel)
        let open = try #require(try response(channel))
        #expect(open.status == 200)
        #expect(recorder.sessions.last?.handshake.headers.count == 2001)
    }

    @Test func pollingHandshakeThenEcho() throws {
        let channel = try connection()
        let open = try #require(try get("EIO=4&transport=polling", on: channel))
        #expect(open.status == 200)
        #expect(open.headers["content-type"] == "text/plain; charset=UTF-8")
        #expect(open.body.hasPrefix(#"0{"sid":""#))
        #expect(open.body.hasSuffix(#"","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000}"#))
        let sid = open.body.split(separator: "\"")[3]

        let posted = try #require(try post("EIO=4&transport=polling&sid=\(sid)", body: "4hello\u{1e}bAQI=", on: channel))
        #expect(posted.status == 200)
        #expect(posted.body == "ok")
        #expect(recorder.messages == [.text("hello"), .binary(ByteBuffer(bytes: [1, 2]))])

        let echoed = try #require(try get("EIO=4&transport=polling&sid=\(sid)", on: channel))
        #expect(echoed.body == "4hello\u{1e}bAQI=")
    }

    @Test func aWaitingGetIsAnsweredFromAnotherConnection() throws {
        let polling = try connection()
        let sid = try handshake(on: polling)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling) == nil)  // held
        let posting = try connection()
        _ = try post("EIO=4&transport=polling&sid=\(sid)", body: "4ping me", on: posting)
        #expect(try response(polling)?.body == "4ping me")
    }

    @Test func aSecondGetClosesTheSession() throws {
        let first = try connection()
        let sid = try handshake(on: first)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: first) == nil)
        let second = try connection()
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: second)?.status == 400)
        #expect(try response(first)?.body == "1")
        #expect(recorder.closeReasons == [.transportError])
        #expect(server.sessionCount == 0)
    }

    /// The official suite's "forcefully closes the session" sends a GET and a POST of `1`
    /// at once; on two event loops either may be read first, and the outcome is the same.
    @Test(arguments: [true, false])
    func aClientCloseAnswersTheGetSentWithIt(getReadFirst: Bool) throws {
        let polling = try connection()
        let sid = try handshake(on: polling)
        let posting = try connection()
        if getReadFirst {
            #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling) == nil)  // held
            #expect(try post("EIO=4&transport=polling&sid=\(sid)", body: "1", on: posting)?.status == 200)
            #expect(try response(polling).map { [$0.status, Int($0.body) ?? -1] } == [200, 6])
        } else {
            #expect(try post("EIO=4&transport=polling&sid=\(sid)", body: "1", on: posting)?.status == 200)
            #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling).map { [$0.status, Int($0.body) ?? -1] } == [200, 6])
        }
        #expect(recorder.closeReasons == [.transportClose])
        #expect(server.sessionCount == 0)
        // Any later request finds no session.
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling)?.status == 400)
    }

    @Test func theNoopOwedAfterAClientCloseLapses() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        #expect(try post("EIO=4&transport=polling&sid=\(sid)", body: "1", on: channel)?.status == 200)
        loop.advanceTime(by: EngineIOServer.clientCloseGrace)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: channel)?.body == #"{"code":1,"message":"Session ID unknown"}"#)
    }

    @Test func aDroppedGetClosesTheSession() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: channel) == nil)
        try channel.close().wait()
        loop.run()
        #expect(recorder.closeReasons == [.transportError])
    }

    @Test func errorsAreAnsweredAsTheReferenceDoes() throws {
        let channel = try connection()
        let unknown = try #require(try get("EIO=4&transport=polling&sid=nope", on: channel))
        #expect(unknown.status == 400)
        #expect(unknown.headers["content-type"] == "application/json")
        #expect(unknown.body == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(try get("EIO=3&transport=polling", on: channel)?.body == #"{"code":5,"message":"Unsupported protocol version"}"#)
        #expect(try post("EIO=4&transport=polling", body: "", on: channel)?.body == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(try get("nothing", on: channel)?.body == #"{"code":0,"message":"Transport unknown"}"#)
        #expect(try get("EIO=4&transport=websocket", on: channel)?.body == #"{"code":3,"message":"Bad request"}"#)
    }

    @Test func anOversizedPostIsRefusedBeforeItsBody() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        try send("POST /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n", on: channel)
        let refused = try #require(try response(channel))
        #expect(refused.status == 413)
        #expect(refused.headers["connection"] == "close")
        #expect(recorder.messages.isEmpty)
    }

    @Test func anOversizedChunkedPostIsRefusedWhileStreaming() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        let chunk = String(repeating: "x", count: 600)
        try send("POST /socket.io/?EIO=4&transport=polling&sid=\(sid) HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", on: channel)
        try send("258\r\n4\(chunk.dropFirst())\r\n", on: channel)
        #expect(try response(channel) == nil)
        try send("258\r\n\(chunk)\r\n", on: channel)
        #expect(try response(channel)?.status == 413)
    }

    @Test func otherPathsGoToTheFallback() throws {
        let channel = try connection()
        try send("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n", on: channel)
        #expect(try response(channel)?.status == 404)
    }

    final class Outcome: @unchecked Sendable {
        // @unchecked Sendable: set by future callbacks on the test's one EmbeddedEventLoop.
        var value: Result<Void, any Error>?
        init(_ future: EventLoopFuture<Void>) { future.whenComplete { self.value = $0 } }
        var succeeded: Bool { if case .success? = value { true } else { false } }
        var failed: Bool { if case .failure? = value { true } else { false } }
    }

    @Test func whenWritableWaitsForAPollingClientToCollectItsQueue() throws {
        var configuration = EngineIOConfiguration()
        configuration.maxPollingQueue = 4
        let small = EngineIOServer(configuration: configuration, delegate: recorder)
        let channel = try connection(to: small)
        let sid = try handshake(on: channel)
        let session = try #require(recorder.sessions.last)
        #expect(Outcome(session.whenWritable()).succeeded)  // nothing queued
        session.send(.text("m0"))
        let waiting = Outcome(session.whenWritable())  // one piece per GET
        for i in 1..<3 { session.send(.text("m\(i)")) }  // a producer that did not wait
        loop.run()
        #expect(waiting.value == nil)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: channel)?.body == "4m0\u{1e}4m1\u{1e}4m2")
        #expect(waiting.succeeded)
        // A producer still waiting when the session ends is told so.
        for i in 0..<3 { session.send(.text("n\(i)")) }
        let orphan = Outcome(session.whenWritable())
        session.closeNow(reason: .forcedClose)
        loop.run()
        #expect(orphan.failed)
    }

    @Test func requestsForOtherHostsAreMisdirected() throws {
        var configuration = EngineIOConfiguration()
        configuration.allowedHosts = AllowedHosts(parsing: "chat.example, *.example.org")
        let strict = EngineIOServer(configuration: configuration, delegate: recorder)
        for host in ["chat.example:3000", "a.example.org"] {
            let channel = try connection(to: strict)
            try send("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: \(host)\r\n\r\n", on: channel)
            #expect(try response(channel)?.status == 200, "\(host)")
        }
        for head in ["Host: evil.example", "Host: example.org", "X-No-Host: 1"] {
            let channel = try connection(to: strict)
            try send("GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\n\(head)\r\n\r\n", on: channel)
            let refused = try #require(try response(channel))
            #expect(refused.status == 421, "\(head)")
            #expect(refused.body == #"{"message":"Host not allowed"}"#)
        }
        // The page and the WebSocket handshake are held to the same list.
        let page = try connection(to: strict)
        try send("GET /index.html HTTP/1.1\r\nHost: evil.example\r\n\r\n", on: page)
        #expect(try response(page)?.status == 421)
        let socket = try connection(to: strict)
        try send(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: evil.example\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            on: socket
        )
        #expect(try response(socket)?.status == 421)
        #expect(strict.sessionCount == 2)
    }

    // MARK: Compression

    /// A polling session with `count` text packets of 100 bytes queued for its next GET.
    private func sessionWithQueue(of count: Int, on channel: EmbeddedChannel) throws -> String {
        let sid = try handshake(on: channel)
        let session = try #require(recorder.sessions.last)
        for index in 0..<count {
            session.send(.text(packetText(index)))
        }
        return sid
    }

    /// 99 bytes: three digits and padding.
    private func packetText(_ index: Int) -> String {
        let digits = String(index)
        return String(repeating: "0", count: 3 - digits.count) + digits + String(repeating: "x", count: 96)
    }

    private func expectedPayload(of count: Int) -> String {
        (0..<count).map { "4" + packetText($0) }.joined(separator: "\u{1e}")
    }

    @Test(arguments: [("gzip", CompressionAlgorithm.gzip()), ("deflate", CompressionAlgorithm.zlib())])
    func aLongPollingResponseIsCompressedForAClientThatTakesIt(coding: String, algorithm: CompressionAlgorithm) throws {
        let channel = try connection()
        let sid = try sessionWithQueue(of: 12, on: channel)  // 1,211 bytes
        let answer = try #require(try get("EIO=4&transport=polling&sid=\(sid)", on: channel, headers: "Accept-Encoding: \(coding)\r\n"))
        #expect(answer.status == 200)
        #expect(answer.headers["content-encoding"] == coding)
        #expect(answer.headers["vary"] == "Accept-Encoding")
        #expect(Int(answer.headers["content-length"] ?? "") == answer.bodyBytes.count)
        #expect(answer.bodyBytes.count < 300)
        var body = ByteBuffer(bytes: answer.bodyBytes)
        let plain = try body.decompress(with: algorithm)
        #expect(String(buffer: plain) == expectedPayload(of: 12))
    }

    @Test func aShortResponseAClientWithoutGzipAndAServerWithoutCompressionGetPlainText() throws {
        let channel = try connection()
        // Below the threshold: 10 packets, 1,009 bytes.
        var sid = try sessionWithQueue(of: 10, on: channel)
        let short = try #require(try get("EIO=4&transport=polling&sid=\(sid)", on: channel, headers: "Accept-Encoding: gzip\r\n"))
        #expect(short.headers["content-encoding"] == nil)
        #expect(short.body == expectedPayload(of: 10))
        // A client that names neither coding, or refuses both.
        for refusal in ["", "Accept-Encoding: br, identity\r\n", "Accept-Encoding: gzip;q=0, deflate;q=0, *\r\n"] {
            let session = try #require(recorder.sessions.last)
            for index in 0..<12 { session.send(.text(packetText(index))) }
            let plain = try #require(try get("EIO=4&transport=polling&sid=\(sid)", on: channel, headers: refusal))
            #expect(plain.headers["content-encoding"] == nil)
            #expect(plain.body == expectedPayload(of: 12))
        }
        // The option off.
        var configuration = EngineIOConfiguration()
        configuration.httpCompression = nil
        let plainServer = EngineIOServer(configuration: configuration, delegate: recorder)
        let other = try connection(to: plainServer)
        sid = try sessionWithQueue(of: 12, on: other)
        let off = try #require(try get("EIO=4&transport=polling&sid=\(sid)", on: other, headers: "Accept-Encoding: gzip\r\n"))
        #expect(off.headers["content-encoding"] == nil)
        #expect(off.body == expectedPayload(of: 12))
    }

    /// The reference's negotiation (`accepts(req).encodings(["gzip", "deflate"])`).
    @Test(arguments: [
        ("gzip, deflate, br", HTTPContentCoding?.some(.gzip)),
        ("deflate, gzip", .deflate),
        ("br;q=1.0, gzip;q=0.8, deflate;q=0.9", .deflate),
        ("x-gzip", .gzip),
        ("GZIP;Q=0.5", .gzip),
        ("*", .gzip),
        ("gzip;q=0, *", .deflate),
        ("gzip;q=0, deflate;q=0.000", nil),
        ("identity", nil),
        ("", nil),
        (";;,,;q=", nil),
    ])
    func theCodingIsNegotiatedAsTheReferenceDoes(header: String, expected: HTTPContentCoding?) {
        #expect(HTTPContentCoding.preferred(by: header) == expected)
    }

    // MARK: WebSocket

    func upgrade(_ query: String, on channel: EmbeddedChannel, headers: String = "") throws -> [UInt8] {
        try send(
            "GET /socket.io/?\(query) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                + "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\(headers)\r\n",
            on: channel
        )
        return try outbound(channel)
    }

    /// A masked client frame, as RFC 6455 requires of clients; `rsv1` marks a compressed one.
    func clientFrame(opcode: UInt8, _ payload: [UInt8], fin: Bool = true, rsv1: Bool = false) -> ByteBuffer {
        let mask: [UInt8] = [0x12, 0x34, 0x56, 0x78]
        var buffer = ByteBuffer()
        buffer.writeInteger((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | opcode)
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

    /// Splits unmasked server frames into (opcode, payload).
    func serverFrames(_ bytes: [UInt8]) -> [(UInt8, [UInt8])] {
        serverFramesWithFlags(bytes).map { ($0.first & 0x0F, $0.payload) }
    }

    /// Splits unmasked server frames into their first byte (FIN, RSV1-3, opcode) and payload.
    func serverFramesWithFlags(_ bytes: [UInt8]) -> [(first: UInt8, payload: [UInt8])] {
        var frames: [(first: UInt8, payload: [UInt8])] = []
        var index = 0
        while index + 2 <= bytes.count {
            let first = bytes[index]
            var length = Int(bytes[index + 1] & 0x7F)
            index += 2
            if length == 126 {
                length = Int(bytes[index]) << 8 | Int(bytes[index + 1])
                index += 2
            } else if length == 127 {
                length = bytes[index..<index + 8].reduce(0) { $0 << 8 | Int($1) }
                index += 8
            }
            frames.append((first, Array(bytes[index..<index + length])))
            index += length
        }
        return frames
    }

    func afterHeaders(_ bytes: [UInt8]) -> [UInt8] {
        let separator: [UInt8] = [13, 10, 13, 10]
        for index in 0..<(bytes.count - 3) where Array(bytes[index..<index + 4]) == separator {
            return Array(bytes[(index + 4)...])
        }
        return []
    }

    @Test func webSocketHandshakeEchoAndHeartbeat() throws {
        let channel = try connection()
        let bytes = try upgrade("EIO=4&transport=websocket", on: channel)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("HTTP/1.1 101 Switching Protocols"))
        let open = try #require(serverFrames(afterHeaders(bytes)).first)
        #expect(open.0 == 0x1)
        // Nothing of HTTP is left on an idle WebSocket's pipeline.
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: WebSocketUpgradeHandler.self) }
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: HTTPRequestHandler.self) }
        #expect(throws: (any Error).self) { try channel.pipeline.syncOperations.handler(type: HTTPResponseEncoder.self) }
        #expect(String(decoding: open.1, as: UTF8.self).contains(#""upgrades":[],"pingInterval":25000"#))

        try channel.writeInbound(clientFrame(opcode: 0x1, Array("4hi".utf8)))
        try channel.writeInbound(clientFrame(opcode: 0x2, [9, 8, 7]))
        let echoes = serverFrames(try outbound(channel))
        #expect(echoes.map(\.0) == [0x1, 0x2])
        #expect(echoes.map(\.1) == [Array("4hi".utf8), [9, 8, 7]])

        // Heartbeat: a ping after pingInterval, answered; then one left unanswered.
        loop.advanceTime(by: .seconds(25))
        #expect(serverFrames(try outbound(channel)).map(\.1) == [Array("2".utf8)])
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("3".utf8)))
        loop.advanceTime(by: .seconds(24))
        #expect(try outbound(channel).isEmpty)
        loop.advanceTime(by: .seconds(1))
        #expect(serverFrames(try outbound(channel)).map(\.1) == [Array("2".utf8)])
        loop.advanceTime(by: .milliseconds(19_999))
        #expect(recorder.closeReasons.isEmpty)
        loop.advanceTime(by: .milliseconds(1))
        #expect(recorder.closeReasons == [.pingTimeout])
        let close = try #require(serverFrames(try outbound(channel)).first)
        #expect(close.0 == 0x8)
        #expect(close.1 == [0x03, 0xE8])  // 1000
    }

    @Test func aRefusedUpgradeGetsTheReferenceError() throws {
        let channel = try connection()
        let text = String(decoding: try upgrade("EIO=4&transport=websocket&sid=nope", on: channel), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 400 Bad Request"))
        #expect(text.hasSuffix(#"{"code":1,"message":"Session ID unknown"}"#))
    }

    @Test func upgradeFromPolling() throws {
        let polling = try connection()
        let sid = try handshake(on: polling)
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling) == nil)  // waiting GET
        let socket = try connection()
        #expect(String(decoding: try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: socket), as: UTF8.self).hasPrefix("HTTP/1.1 101"))
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("2probe".utf8)))
        #expect(serverFrames(try outbound(socket)).map(\.1) == [Array("3probe".utf8)])
        // Released by the upgrade check, 100 ms after the probe, as in the reference.
        #expect(try response(polling) == nil)
        loop.advanceTime(by: .milliseconds(100))
        #expect(try response(polling)?.body == "6")
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("5".utf8)))
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("4upgraded".utf8)))
        #expect(serverFrames(try outbound(socket)).map(\.1) == [Array("4upgraded".utf8)])
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling)?.body == #"{"code":3,"message":"Bad request"}"#)
    }

    /// The upgrade timeout closes a WebSocket that has not sent `2probe`, as the reference
    /// does; a probed one waits for `5` past it (its client has stopped polling and waits for
    /// its last GET's response, which a slow link can make last longer than the timeout).
    @Test func aProbedUpgradeIsNotTimedOut() throws {
        let polling = try connection()
        let sid = try handshake(on: polling)
        let idle = try connection()
        _ = try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: idle)
        loop.advanceTime(by: .seconds(10))
        #expect(serverFrames(try outbound(idle)).map(\.0) == [0x8])  // closed
        let socket = try connection()
        _ = try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: socket)
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("2probe".utf8)))
        #expect(serverFrames(try outbound(socket)).map(\.1) == [Array("3probe".utf8)])
        loop.advanceTime(by: .seconds(12))  // past its timeout, before the first ping
        #expect(try outbound(socket).isEmpty)
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("5".utf8)))
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("4late".utf8)))
        #expect(serverFrames(try outbound(socket)).map(\.1) == [Array("4late".utf8)])
        #expect(recorder.closeReasons.isEmpty)
    }

    /// aiohttp (python-socketio's AsyncClient) reuses one keep-alive connection for the
    /// handshake, the polling requests and the WebSocket upgrade.
    @Test func anUpgradeOnAKeepAliveConnectionThatCarriedPolling() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        #expect(try post("EIO=4&transport=polling&sid=\(sid)", body: "4first", on: channel)?.body == "ok")
        let answer = try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: channel)
        #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 101 Switching Protocols"))
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("2probe".utf8)))
        #expect(serverFrames(try outbound(channel)).map(\.1) == [Array("3probe".utf8)])
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("5".utf8)))
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("4second".utf8)))
        #expect(serverFrames(try outbound(channel)).map(\.1) == [Array("4first".utf8), Array("4second".utf8)])
        #expect(recorder.messages == [.text("first"), .text("second")])
        #expect(recorder.closeReasons.isEmpty)
    }

    /// A failed upgrade attempt leaves the session on polling.
    @Test func aRefusedUpgradeOnAKeepAliveConnectionKeepsTheSession() throws {
        let channel = try connection()
        let sid = try handshake(on: channel)
        try send(
            "GET /socket.io/?EIO=4&transport=websocket&sid=\(sid) HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n"
                + "Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 7\r\n\r\n",
            on: channel
        )
        let refusal = try #require(try response(channel))
        #expect(refusal.status == 400)
        // Nothing after an upgrade request is parsed as HTTP: the connection ends, as the
        // reference ends it; the client goes on polling over another.
        #expect(refusal.headers["connection"] == "close")
        let next = try connection()
        #expect(try post("EIO=4&transport=polling&sid=\(sid)", body: "4still here", on: next)?.body == "ok")
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: next)?.body == "4still here")
        #expect(recorder.closeReasons.isEmpty)
    }

    /// A polling session upgraded as the official suites do it: `2probe` and `5` sent at
    /// once. Returns the session id, its polling connection and its WebSocket.
    private func upgradedSession() throws -> (sid: String, polling: EmbeddedChannel, socket: EmbeddedChannel) {
        let polling = try connection()
        let sid = try handshake(on: polling)
        let socket = try connection()
        _ = try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: socket)
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("2probe".utf8)))
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("5".utf8)))
        _ = try outbound(socket)
        return (sid, polling, socket)
    }

    /// The official suites' "ignores WebSocket connection with same sid after upgrade": the
    /// second handshake completes, then that WebSocket is closed; the first goes on.
    @Test func aSecondWebSocketForAnUpgradedSessionIsAcceptedThenClosed() throws {
        let (sid, _, first) = try upgradedSession()
        let second = try connection()
        let answer = try upgrade("EIO=4&transport=websocket&sid=\(sid)", on: second)
        #expect(String(decoding: answer, as: UTF8.self).hasPrefix("HTTP/1.1 101 Switching Protocols"))
        let close = try #require(serverFrames(afterHeaders(answer)).last)
        #expect(close.0 == 0x8)
        try first.writeInbound(clientFrame(opcode: 0x1, Array("4hello".utf8)))
        #expect(serverFrames(try outbound(first)).map(\.1) == [Array("4hello".utf8)])
        #expect(recorder.closeReasons.isEmpty)
    }

    /// The official suites' "ignores HTTP requests with same sid after upgrade".
    @Test func aGetAfterTheUpgradeIsRefusedAndTheSessionGoesOn() throws {
        let (sid, polling, socket) = try upgradedSession()
        #expect(try get("EIO=4&transport=polling&sid=\(sid)", on: polling)?.status == 400)
        try socket.writeInbound(clientFrame(opcode: 0x1, Array("4hello".utf8)))
        #expect(serverFrames(try outbound(socket)).map(\.1) == [Array("4hello".utf8)])
    }

    @Test func fragmentedMessagesAreReassembledAndLimited() throws {
        let channel = try connection()
        _ = try upgrade("EIO=4&transport=websocket", on: channel)
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("4ab".utf8), fin: false))
        try channel.writeInbound(clientFrame(opcode: 0x0, Array("cd".utf8)))
        #expect(recorder.messages == [.text("abcd")])
        _ = try outbound(channel)
        let big = [UInt8](repeating: UInt8(ascii: "x"), count: 600)
        try channel.writeInbound(clientFrame(opcode: 0x1, [UInt8(ascii: "4")] + big, fin: false))
        try channel.writeInbound(clientFrame(opcode: 0x0, big))
        let close = try #require(serverFrames(try outbound(channel)).last)
        #expect(close.0 == 0x8)
        #expect(close.1 == [0x03, 0xF1])  // 1009
        #expect(recorder.closeReasons == [.transportError])
    }

    @Test func invalidUTF8IsRefused() throws {
        let channel = try connection()
        _ = try upgrade("EIO=4&transport=websocket", on: channel)
        try channel.writeInbound(clientFrame(opcode: 0x1, [UInt8(ascii: "4"), 0xC3, 0x28]))
        let close = try #require(serverFrames(try outbound(channel)).last)
        #expect(close.1 == [0x03, 0xEF])  // 1007
        #expect(recorder.messages.isEmpty)
    }
}
