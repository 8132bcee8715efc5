import NIOCore
import NIOHTTP1
import NIOPosix

/// One raw Socket.IO client over HTTP long-polling, as a receiver of the fan-out scenario
/// (`--transport polling`): a kept-alive connection that always has a GET waiting, and a
/// second one for its POSTs (the CONNECT, pongs), one at a time as the protocol wants, what
/// queued meanwhile sent together in the next. Every packet but the handshake, the CONNECT
/// answer and pings goes to the delegate, as `BenchClient` hands over text frames.
final class PollingBenchClient: BenchConnection, @unchecked Sendable {
    // @unchecked Sendable: all state is touched on the generator's single event loop.

    let index: Int
    let auth: String
    private weak var delegate: (any BenchClientDelegate)?
    private let host: String
    private let port: Int
    private let path: String
    private var sid: String?
    private var getChannel: (any Channel)?
    private var postChannel: (any Channel)?
    private var postInFlight = false
    private var queued: [String] = []
    private(set) var isConnected = false
    private var connectPromise: EventLoopPromise<Void>?

    init(index: Int, auth: String, host: String, port: Int, path: String, delegate: any BenchClientDelegate) {
        self.index = index
        self.auth = auth
        self.host = host
        self.port = port
        self.path = path
        self.delegate = delegate
    }

    /// Opens both connections and the session; completes once the handshake is answered
    /// (the CONNECT answer comes through the delegate, as for `BenchClient`).
    func start(group: any EventLoopGroup, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let promise = loop.makePromise(of: Void.self)
        connectPromise = promise
        let get = open(group: group, loop: loop) { [self] status, body in polled(status: status, body: body) }
        let post = open(group: group, loop: loop) { [self] status, _ in posted(status: status) }
        get.and(post).whenComplete { [self] result in
            switch result {
            case .success(let (getChannel, postChannel)):
                self.getChannel = getChannel
                self.postChannel = postChannel
                poll()
            case .failure(let error):
                promise.fail(error)
            }
        }
        return promise.futureResult
    }

    private func open(group: any EventLoopGroup, loop: any EventLoop, onResponse: @escaping @Sendable (HTTPResponseStatus, ByteBuffer) -> Void) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connectTimeout(.seconds(30))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(ResponseReader(onResponse: onResponse))
                }
            }
            .connect(host: host, port: port)
    }

    private func uri() -> String {
        path + "?EIO=4&transport=polling" + (sid.map { "&sid=\($0)" } ?? "")
    }

    private func request(_ method: HTTPMethod, on channel: any Channel, body: String?) {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: "\(host):\(port)")
        var buffer: ByteBuffer?
        if let body {
            buffer = channel.allocator.buffer(string: body)
            headers.add(name: "Content-Type", value: "text/plain;charset=UTF-8")
            headers.add(name: "Content-Length", value: String(buffer!.readableBytes))
        }
        channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri(), headers: headers)), promise: nil)
        if let buffer { channel.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
    }

    private func poll() {
        guard let getChannel else { return }
        request(.GET, on: getChannel, body: nil)
    }

    private func polled(status: HTTPResponseStatus, body: ByteBuffer) {
        guard status == .ok else { return close() }
        let view = body.readableBytesView
        var start = view.startIndex
        var index = view.startIndex
        while index <= view.endIndex {
            if index == view.endIndex || view[index] == 0x1E {
                if index > start { packet(body.getSlice(at: start, length: index - start)!) }
                start = index + 1
            }
            index += 1
        }
        if getChannel != nil { poll() }
    }

    private func packet(_ packet: ByteBuffer) {
        guard let first = packet.getInteger(at: packet.readerIndex, as: UInt8.self) else { return }
        switch first {
        case UInt8(ascii: "0"):
            let text = packet.getString(at: packet.readerIndex, length: packet.readableBytes) ?? ""
            if let key = text.range(of: "\"sid\":\"") {
                let rest = text[key.upperBound...]
                sid = rest.firstIndex(of: "\"").map { String(rest[..<$0]) }
            }
            send("40" + auth)
            connectPromise?.succeed()
            connectPromise = nil
        case UInt8(ascii: "2"):
            send("3")
        case UInt8(ascii: "1"):
            close()
        case UInt8(ascii: "4"):
            if !isConnected, packet.getInteger(at: packet.readerIndex + 1, as: UInt8.self) == UInt8(ascii: "0") {
                isConnected = true
                delegate?.connected(self)
            } else {
                delegate?.received(self, text: packet)
            }
        default:
            break
        }
    }

    /// Queues a packet for the next POST. Call on the event loop.
    func send(_ packet: String) {
        queued.append(packet)
        flushPosts()
    }

    private func flushPosts() {
        guard !postInFlight, !queued.isEmpty, let postChannel, sid != nil else { return }
        postInFlight = true
        let payload = queued.joined(separator: "\u{1E}")
        queued.removeAll()
        request(.POST, on: postChannel, body: payload)
    }

    private func posted(status: HTTPResponseStatus) {
        postInFlight = false
        guard status == .ok else { return close() }
        flushPosts()
    }

    /// Drops both connections.
    func close() {
        let wasConnected = isConnected
        isConnected = false
        getChannel?.close(promise: nil)
        postChannel?.close(promise: nil)
        getChannel = nil
        postChannel = nil
        connectPromise?.fail(ChannelError.ioOnClosedChannel)
        connectPromise = nil
        if wasConnected { delegate?.closed(self) }
    }
}

/// Collects each response of a kept-alive connection and hands it over whole.
private final class ResponseReader: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private let onResponse: @Sendable (HTTPResponseStatus, ByteBuffer) -> Void
    private var status: HTTPResponseStatus = .ok
    private var body: ByteBuffer?

    init(onResponse: @escaping @Sendable (HTTPResponseStatus, ByteBuffer) -> Void) {
        self.onResponse = onResponse
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            body = nil
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            onResponse(status, body ?? ByteBuffer())
            body = nil
        }
    }
}
