import CompressNIO
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing

@testable import EngineIO

/// permessage-deflate (RFC 7692) through the channel handlers, on `EmbeddedChannel`s.
extension EmbeddedServerTests {
    static let offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"

    /// The suite's server (1,000-byte messages at most), compressing from 100 bytes.
    func deflatingServer() -> EngineIOServer {
        var configuration = EngineIOConfiguration()
        configuration.maxHttpBufferSize = 1000
        configuration.perMessageDeflate = PerMessageDeflate(threshold: 100)
        return EngineIOServer(configuration: configuration, delegate: recorder)
    }

    /// `data` as a client compresses a message: raw deflate, flushed, without the last four bytes.
    func deflated(_ data: [UInt8]) throws -> [UInt8] {
        let compressor = try ZlibCompressor(algorithm: .deflate)
        var input = ByteBuffer(bytes: data)
        var output = ByteBufferAllocator().buffer(capacity: compressor.maxSize(from: input))
        try compressor.deflate(from: &input, to: &output, flush: .sync)
        return Array(output.readableBytesView.dropLast(4))
    }

    func inflated(_ data: [UInt8]) throws -> [UInt8] {
        let inflater = try ZlibDecompressor(algorithm: .deflate)
        var input = ByteBuffer(bytes: data + [0x00, 0x00, 0xFF, 0xFF])
        var output = ByteBufferAllocator().buffer(capacity: 1 << 20)
        do { try inflater.inflate(from: &input, to: &output) } catch let error as CompressNIOError where error == .inputBufferOverflow {}
        return Array(output.readableBytesView)
    }

    /// A WebSocket session on `server` whose client offered permessage-deflate.
    func deflatingSocket(on server: EngineIOServer) throws -> (channel: EmbeddedChannel, answer: String) {
        let channel = try connection(to: server)
        let answer = try upgrade("EIO=4&transport=websocket", on: channel, headers: Self.offer)
        return (channel, String(decoding: answer, as: UTF8.self))
    }

    @Test func theAgreementIsAnsweredOnlyWhenOfferedAndOn() throws {
        let (_, answer) = try deflatingSocket(on: deflatingServer())
        #expect(answer.contains("sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n"))
        let plain = try connection(to: deflatingServer())
        let unoffered = String(decoding: try upgrade("EIO=4&transport=websocket", on: plain), as: UTF8.self)
        #expect(unoffered.hasPrefix("HTTP/1.1 101") && !unoffered.lowercased().contains("sec-websocket-extensions"))
        // The option off (the default): no agreement, and a compressed frame is a protocol error.
        let (off, offAnswer) = try deflatingSocket(on: server)
        #expect(offAnswer.hasPrefix("HTTP/1.1 101") && !offAnswer.lowercased().contains("sec-websocket-extensions"))
        try off.writeInbound(clientFrame(opcode: 0x1, try deflated(Array("4hello".utf8)), rsv1: true))
        #expect(serverFrames(try outbound(off)).last.map { [$0.0] + $0.1 } == [0x8, 0x03, 0xEA])  // 1002
        #expect(recorder.messages.isEmpty)
    }

    @Test func compressedMessagesEachWay() throws {
        let (channel, _) = try deflatingSocket(on: deflatingServer())
        _ = try outbound(channel)
        let long = "4" + String(repeating: "a chat message, ", count: 40)  // 641 bytes
        try channel.writeInbound(clientFrame(opcode: 0x1, try deflated(Array(long.utf8)), rsv1: true))
        // Fragmented: RSV1 on the first frame only.
        let split = try deflated(Array(long.utf8))
        try channel.writeInbound(clientFrame(opcode: 0x1, Array(split.prefix(5)), fin: false, rsv1: true))
        try channel.writeInbound(clientFrame(opcode: 0x0, Array(split.dropFirst(5))))
        try channel.writeInbound(clientFrame(opcode: 0x1, Array("4short".utf8)))
        #expect(recorder.messages == [.text(String(long.dropFirst())), .text(String(long.dropFirst())), .text("short")])
        // The echoes: long ones compressed (RSV1, shorter), the short one as it is.
        let echoes = serverFramesWithFlags(try outbound(channel))
        #expect(echoes.map(\.first) == [0xC1, 0xC1, 0x81])
        #expect(try inflated(echoes[0].payload) == Array(long.utf8))
        #expect(echoes[0].payload.count < 100)
        #expect(echoes[2].payload == Array("4short".utf8))
    }

    @Test func aBroadcastIsCompressedOncePerEventLoop() throws {
        let deflating = deflatingServer()
        let sockets = try (0..<3).map { _ in try deflatingSocket(on: deflating).channel }
        for socket in sockets { _ = try outbound(socket) }
        let before = deflating.deflaters.value(for: loop).compressions  // the open packets, ~100 bytes each
        let packet = EngineIOOutboundPacket.message(.text(String(repeating: "the same broadcast ", count: 20)))
        for session in recorder.sessions { session.send(packet) }
        let frames = try sockets.map { try serverFramesWithFlags(outbound($0)) }
        #expect(frames.allSatisfy { $0.count == 1 && $0[0].first == 0xC1 && $0[0].payload == frames[0][0].payload })
        #expect(deflating.deflaters.value(for: loop).compressions == before + 1)
        #expect(try inflated(frames[0][0].payload) == Array(packet.bytes.readableBytesView))
    }

    @Test func aDeflateBombIsRefusedAtTheLimit() throws {
        let (channel, _) = try deflatingSocket(on: deflatingServer())
        _ = try outbound(channel)
        // 3 MB of one byte: a few kilobytes compressed; the limit is 1,000 bytes.
        let bomb = try deflated([UInt8(ascii: "4")] + [UInt8](repeating: UInt8(ascii: "x"), count: 3_000_000))
        #expect(bomb.count < 4_000)
        try channel.writeInbound(clientFrame(opcode: 0x1, bomb, rsv1: true))
        #expect(serverFrames(try outbound(channel)).last.map { [$0.0] + $0.1 } == [0x8, 0x03, 0xF1])  // 1009
        #expect(recorder.messages.isEmpty)
        #expect(recorder.closeReasons == [.transportError])
        // The inflater stops one byte past the limit, whatever the message would become.
        #expect(throws: WebSocketDeflater.InflateFailure.tooLarge) {
            try WebSocketDeflater().inflate(ByteBuffer(bytes: bomb), limit: 1000)
        }
    }

    @Test(arguments: [
        // Not a deflate stream: 1007.
        ([(UInt8(0x41), [UInt8](repeating: 0xFF, count: 8), true)], [UInt8(0x03), 0xEF]),
        // RSV1 on a continuation: 1002.
        ([(UInt8(0x01), Array("4ab".utf8), false), (UInt8(0x40), Array("cd".utf8), true)], [0x03, 0xEA]),
        // RSV1 on a control frame: 1002.
        ([(UInt8(0x49), [], true)], [0x03, 0xEA]),
    ])
    func badCompressedFramesCloseTheConnection(frames: [(UInt8, [UInt8], Bool)], code: [UInt8]) throws {
        let (channel, _) = try deflatingSocket(on: deflatingServer())
        _ = try outbound(channel)
        for (head, payload, fin) in frames {
            try channel.writeInbound(clientFrame(opcode: head & 0x0F, payload, fin: fin, rsv1: head & 0x40 != 0))
        }
        #expect(serverFrames(try outbound(channel)).last.map { [$0.0] + $0.1 } == [0x8] + code)
        #expect(recorder.messages.isEmpty)
    }

    /// RFC 7692's negotiation: the first acceptable offer wins.
    @Test(arguments: [
        ("permessage-deflate", Int32?.some(15)),
        ("permessage-deflate; client_max_window_bits", 15),
        ("permessage-deflate; server_max_window_bits=10; client_no_context_takeover", 10),
        ("permessage-deflate; server_max_window_bits=\"12\"", 12),
        ("permessage-deflate; server_max_window_bits=8, permessage-deflate", 15),
        ("permessage-deflate; server_max_window_bits=8", nil),
        ("permessage-deflate; server_max_window_bits", nil),
        ("permessage-deflate; client_max_window_bits=16", nil),
        ("permessage-deflate; server_no_context_takeover; server_no_context_takeover", nil),
        ("permessage-deflate; unknown", nil),
        ("x-webkit-deflate-frame", nil),
        ("", nil),
    ])
    func offersAreNegotiatedAsRFC7692Says(offer: String, windowBits: Int32?) {
        let headers = HTTPHeaders([("Sec-WebSocket-Extensions", offer)])
        #expect(DeflateAgreement.negotiate(headers)?.serverWindowBits == windowBits)
    }
}
