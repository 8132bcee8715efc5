import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// One kept-alive HTTP/1.1 connection that sends a request at a time: the polling handshake
/// of an upgrading client, and the requests whose latency `forward-latency` times.
final class SimpleHTTPClient: ChannelInboundHandler, @unchecked Sendable {
    // @unchecked Sendable: `waiting` and `body` are touched on the channel's event loop only
    // (`request` hops there).
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private var waiting: EventLoopPromise<(HTTPResponseStatus, String)>?
    private var status = HTTPResponseStatus.ok
    private var body = ByteBuffer()
    private var channel: (any Channel)?
    private let host: String
    private let port: Int

    private init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    static func connect(host: String, port: Int, group: any EventLoopGroup) -> EventLoopFuture<SimpleHTTPClient> {
        let client = SimpleHTTPClient(host: host, port: port)
        return ClientBootstrap(group: group)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(client)
                }
            }
            .connect(host: host, port: port)
            .map { channel in
                client.channel = channel
                return client
            }
    }

    /// Sends one request; the answer's status and body.
    func request(_ method: HTTPMethod, _ uri: String, body: String = "") -> EventLoopFuture<(HTTPResponseStatus, String)> {
        guard let channel else { fatalError("not connected") }
        return channel.eventLoop.flatSubmit {
            let promise = channel.eventLoop.makePromise(of: (HTTPResponseStatus, String).self)
            self.waiting = promise
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: "\(self.host):\(self.port)")
            headers.add(name: "Content-Length", value: String(body.utf8.count))
            channel.write(HTTPClientRequestPart.head(HTTPRequestHead(version: .http1_1, method: method, uri: uri, headers: headers)), promise: nil)
            if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(string: body))), promise: nil) }
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            return promise.futureResult
        }
    }

    func close() {
        channel?.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = head.status
            body.clear()
        case .body(var chunk):
            body.writeBuffer(&chunk)
        case .end:
            let promise = waiting
            waiting = nil
            promise?.succeed((status, String(buffer: body)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        waiting?.fail(ChannelError.ioOnClosedChannel)
        waiting = nil
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        waiting?.fail(error)
        waiting = nil
        context.close(promise: nil)
    }

    /// Opens a polling session as the official clients do first; its id.
    static func pollingHandshake(host: String, port: Int, path: String, group: any EventLoopGroup) -> EventLoopFuture<String> {
        connect(host: host, port: port, group: group).flatMap { client in
            client.request(.GET, path + "?EIO=4&transport=polling").flatMapThrowing { status, body in
                client.close()
                guard status == .ok, let key = body.range(of: "\"sid\":\"") else { throw ChannelError.inappropriateOperationForState }
                let rest = body[key.upperBound...]
                return String(rest[..<(rest.firstIndex(of: "\"") ?? rest.endIndex)])
            }
        }
    }
}
