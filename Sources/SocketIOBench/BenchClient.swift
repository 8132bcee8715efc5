import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOWebSocket
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A benchmark client of either transport, as its delegate knows it.
protocol BenchConnection: AnyObject {
    /// Its place in the load's clients: senders first, then receivers.
    var index: Int { get }
}

/// What a benchmark connection does with what it receives. Called on its event loop.
protocol BenchClientDelegate: AnyObject {
    func connected(_ client: any BenchConnection)
    func received(_ client: any BenchConnection, text: ByteBuffer)
    func closed(_ client: any BenchConnection)
}

/// One raw Socket.IO client over a WebSocket: it answers pings, joins `/` with an auth
/// payload, and hands every other text frame to its delegate. No JSON parsing, no
/// per-message allocation beyond NIO's own, so the generator stays cheap.
final class BenchClient: ChannelInboundHandler, BenchConnection, @unchecked Sendable {
    // @unchecked Sendable: all state is touched on the channel's event loop only.
    typealias InboundIn = WebSocketFrame
    typealias OutboundOut = WebSocketFrame

    let index: Int
    /// The CONNECT payload; the storm scenario rewrites it to resume a session.
    var auth: String
    /// The last CONNECT answer's JSON (`{"sid":…,"pid":…}`).
    private(set) var connectAnswer = ""
    private weak var delegate: (any BenchClientDelegate)?
    private var context: ChannelHandlerContext?
    private(set) var isConnected = false
    /// Set for a client that opened its session over polling and upgrades it (as the official
    /// clients do by default): the WebSocket carries this session id, probes, upgrades, then
    /// joins the namespace.
    var upgradeSid: String?
    private static let mask = WebSocketMaskingKey([0x11, 0x22, 0x33, 0x44])

    init(index: Int, auth: String, delegate: any BenchClientDelegate) {
        self.index = index
        self.auth = auth
        self.delegate = delegate
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        if upgradeSid != nil { send("2probe") }
    }

    /// A string field of the CONNECT answer (`sid`, `pid`).
    func answerField(_ name: String) -> String? {
        guard let key = connectAnswer.range(of: "\"\(name)\":\"") else { return nil }
        let rest = connectAnswer[key.upperBound...]
        return rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        guard frame.opcode == .text else {
            if frame.opcode == .connectionClose { context.close(promise: nil) }
            return
        }
        let text = frame.unmaskedData
        guard let first = text.getInteger(at: text.readerIndex, as: UInt8.self) else { return }
        switch first {
        case UInt8(ascii: "0"):
            send("40" + auth)
        case UInt8(ascii: "2"):
            send("3")
        case UInt8(ascii: "3") where upgradeSid != nil && String(buffer: text) == "3probe":
            send("5")
            send("40" + auth)
        case UInt8(ascii: "4"):
            if !isConnected, text.readableBytes >= 2, text.getInteger(at: text.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "0") {
                isConnected = true
                connectAnswer = text.getString(at: text.readerIndex + 2, length: text.readableBytes - 2) ?? ""
                delegate?.connected(self)
            } else {
                delegate?.received(self, text: text)
            }
        default:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        isConnected = false
        delegate?.closed(self)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    /// Sends a text frame. Call on the event loop.
    func send(_ text: String) {
        guard let context else { return }
        let buffer = context.channel.allocator.buffer(string: text)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, maskKey: Self.mask, data: buffer)), promise: nil)
    }

    /// Drops the TCP connection without a close frame: a lost link.
    func cut() {
        context?.close(promise: nil)
    }

    var eventLoop: (any EventLoop)? { context?.eventLoop }

    /// Connects to `host:port`, upgrades to WebSocket at `path`, installs `client`.
    static func connect(
        host: String, port: Int, path: String, client: BenchClient, group: any EventLoopGroup, localAddress: String?,
        offerDeflate: Bool = false
    ) -> EventLoopFuture<any Channel> {
        var bootstrap = ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let upgrader = NIOWebSocketClientUpgrader(
                        maxFrameSize: 1 << 20,
                        upgradePipelineHandler: { channel, _ in
                            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(client) }
                        }
                    )
                    // The open packet can arrive in the same read as the 101: keep those bytes.
                    try channel.pipeline.syncOperations.addHTTPClientHandlers(
                        leftOverBytesStrategy: .forwardBytes,
                        withClientUpgrade: (upgraders: [upgrader], completionHandler: { _ in })
                    )
                }
            }
        if let localAddress {
            bootstrap = bootstrap.bind(to: try! SocketAddress(ipAddress: localAddress, port: 0))
        }
        return bootstrap.connect(host: host, port: port).flatMap { channel in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "\(host):\(port)")
            headers.add(name: "Content-Length", value: "0")
            // As a browser offers it; the bench client never sends or reads compressed messages
            // (it measures what the agreement costs an idle connection).
            if offerDeflate { headers.add(name: "Sec-WebSocket-Extensions", value: "permessage-deflate; client_max_window_bits") }
            let sid = client.upgradeSid.map { "&sid=\($0)" } ?? ""
            let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: path + "?EIO=4&transport=websocket" + sid, headers: headers)
            channel.write(HTTPClientRequestPart.head(head), promise: nil)
            return channel.writeAndFlush(HTTPClientRequestPart.end(nil)).map { channel }
        }
    }
}
