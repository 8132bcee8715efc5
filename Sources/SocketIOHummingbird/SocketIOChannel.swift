import Atomics
import EngineIO
import HTTPCommon
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOWebSocket

/// Hummingbird's HTTP/1.1 child channel with Socket.IO's WebSockets: every request goes to
/// the app's router as with `.http1()`, and a WebSocket upgrade on the Socket.IO path is
/// decided by that router too (so the app's middleware guards it), then carried by the
/// engine's own frame handlers, never through an async sequence per frame.
///
/// Built by `HTTPServerBuilder.http1SocketIO(_:router:configuration:)` (or `http1EngineIO`).
struct SocketIOChannel<Context: RequestContext>: ServerChildChannel, HTTPChannelHandler
where Context.Source == ApplicationRequestContextSource {
    enum Negotiated: Sendable {
        /// The engine took the connection: nothing is left for Hummingbird to do.
        case engineIO
        /// Plain HTTP: Hummingbird answers its requests.
        case http(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, EngineIOHostConnection)
        /// An upgrade request refused (by the app's middleware or the engine): answered with
        /// this response, then the connection closes, as after any refused upgrade.
        case refused(NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, HTTPCommon.HTTPResponse)
    }

    struct Value: ServerChildChannelValue {
        let negotiated: EventLoopFuture<Negotiated>
        let channel: any Channel
    }

    let engine: EngineIOServer
    let webSocketResponder: any HTTPResponder<Context>
    let configuration: HTTP1Channel.Configuration
    /// The app's responder, as Hummingbird built it.
    let appResponder: HTTPChannelHandler.Responder
    /// What `handleHTTP` calls: the app's responder, for one connection (`forConnection`).
    var responder: HTTPChannelHandler.Responder

    init(engine: EngineIOServer, router: any HTTPResponder<Context>, configuration: HTTP1Channel.Configuration, responder: @escaping HTTPChannelHandler.Responder) {
        self.engine = engine
        self.webSocketResponder = router
        self.configuration = configuration
        self.appResponder = responder
        self.responder = responder
    }

    /// The app's responder for the requests of one connection: each request's task knows
    /// the connection (the held GET's watcher, the peer). A WebSocket upgrade that comes after
    /// other requests on a kept-alive connection is sent to a new connection, where it is
    /// that connection's first request and the upgrade path takes it (as Hummingbird's own
    /// WebSocket channel does; the upgrader reads first requests only).
    private func responder(for watcher: EngineIOHostConnection, remoteAddress: SocketAddress?) -> HTTPChannelHandler.Responder {
        let appResponder = self.appResponder
        let mount = engine.configuration.path
        let connection = HostConnection(watcher: watcher, remoteAddress: remoteAddress, upgrade: nil)
        // The first request went through the upgrader already (a refused upgrade: the engine
        // answers it); only a later one is sent to a new connection.
        let requests = ManagedAtomic(0)
        return { request, writer, channel in
            let first = requests.loadThenWrappingIncrement(ordering: .relaxed) == 0
            if !first, request.headers[.upgrade]?.lowercased() == "websocket", Self.isEngineIOPath(request.uri.path, mount: mount) {
                let response = HTTPTypes.HTTPResponse(
                    status: .temporaryRedirect, headerFields: [.location: request.uri.description, .connection: "close"]
                )
                try await writer.writeResponse(response)
                throw RedirectedToNewConnection()
            }
            // The writer is consumed by the responder, so it crosses into the task-local
            // scope in a box and is taken out there.
            let box = WriterBox(writer)
            try await HostConnection.$current.withValue(connection) {
                guard let writer = box.writer.take() else { return }
                try await appResponder(request, writer, channel)
            }
        }
    }

    private final class WriterBox {
        var writer: ResponseWriter?
        init(_ writer: consuming ResponseWriter) { self.writer = consume writer }
    }

    struct RedirectedToNewConnection: Error {}

    static func isEngineIOPath(_ path: String, mount: String) -> Bool {
        path == mount || path + "/" == mount
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            // As on the engine's own listener: Hummingbird's connections have Nagle's delay on,
            // and start reads at 2 KiB, a buffer that every idle WebSocket would keep.
            try EngineIOServer.configureAcceptedConnection(channel)
            let watcher = EngineIOHostConnection(eventLoop: channel.eventLoop)
            let negotiation = UpgradeNegotiation()
            let headTimeout = RequestHeadTimeout(timeout: engine.configuration.requestHeadTimeout)
            let boundHeadTimeout = NIOLoopBound(headTimeout, eventLoop: channel.eventLoop)
            let upgrader = NIOTypedWebSocketServerUpgrader<Negotiated>(
                maxFrameSize: engine.webSocketMaxFrameSize,
                // The engine's transport answers protocol errors itself, closing gracefully.
                enableAutomaticErrorHandling: false,
                shouldUpgrade: { channel, head in
                    self.shouldUpgrade(head, channel: channel, watcher: watcher, negotiation: negotiation, logger: logger)
                },
                upgradePipelineHandler: { channel, _ in
                    channel.eventLoop.makeCompletedFuture {
                        guard case .accept(let request)? = negotiation.decided else { throw UpgradeNotDecided() }
                        // The connection is the WebSocket's to time from here.
                        channel.pipeline.syncOperations.removeHandler(boundHeadTimeout.value, promise: nil)
                        try self.engine.adoptWebSocket(channel, for: request)
                        return .engineIO
                    }
                }
            )
            let notUpgraded: @Sendable (any Channel) -> EventLoopFuture<Negotiated> = { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(watcher)
                    try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
                    try channel.pipeline.syncOperations.addHandlers(self.configuration.additionalChannelHandlers())
                    let http = try NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>(
                        wrappingChannelSynchronously: channel,
                        configuration: .init(isOutboundHalfClosureEnabled: true)
                    )
                    if case .refuse(let refusal)? = negotiation.decided {
                        return .refused(http, refusal)
                    }
                    return .http(http, watcher)
                }
            }
            var upgradeConfiguration = NIOUpgradableHTTPServerPipelineConfiguration<Negotiated>(
                upgradeConfiguration: .init(upgraders: [upgrader], notUpgradingCompletionHandler: notUpgraded)
            )
            upgradeConfiguration.enablePipelining = false  // HTTP is pipelined by NIOAsyncChannel
            // A request NIO cannot parse (headers over the limits, say) gets its 400 and the
            // connection ends, as on the engine's own listener; Hummingbird answers the rest.
            upgradeConfiguration.enableErrorHandling = true
            upgradeConfiguration.enableResponseHeaderValidation = false  // HTTPTypes validates
            upgradeConfiguration.decoderConfiguration.maxHeaderFieldSize = configuration.httpDecoder.maxHeaderFieldSize
            upgradeConfiguration.decoderConfiguration.maxHeaderListSize = configuration.httpDecoder.maxHeaderListSize
            upgradeConfiguration.decoderConfiguration.maxHeaderFieldCount = configuration.httpDecoder.maxHeaderFieldCount
            let negotiated = try channel.pipeline.syncOperations.configureUpgradableHTTPServerPipeline(configuration: upgradeConfiguration)
            let decoder = try channel.pipeline.syncOperations.handler(type: ByteToMessageHandler<HTTPRequestDecoder>.self)
            try channel.pipeline.syncOperations.addHandler(headTimeout, position: .after(decoder))
            return Value(negotiated: negotiated, channel: channel)
        }
    }

    struct UpgradeNotDecided: Error {}

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .engineIO:
                // The engine's handlers carry the connection from here. One WebSocket's task
                // at a time stays, until none is open: a graceful stop then waits for the
                // engine's close frames before the process may exit.
                await engine.holdWhileWebSocketsAreOpen()
            case .http(let http, let watcher):
                var connection = self
                connection.responder = responder(for: watcher, remoteAddress: value.channel.remoteAddress)
                await connection.handleHTTP(asyncChannel: http, logger: logger)
            case .refused(let http, let response):
                await write(response, closing: http, logger: logger)
            }
        } catch {
            logger.debug("connection ended before its first request was answered", metadata: ["error": "\(error)"])
        }
    }

    /// Runs the upgrade request through the app's router, where the Socket.IO route (behind
    /// the app's middleware) decides; an upgrade elsewhere is not this channel's to make.
    private func shouldUpgrade(
        _ head: HTTPRequestHead, channel: any Channel, watcher: EngineIOHostConnection, negotiation: UpgradeNegotiation, logger: Logger
    ) -> EventLoopFuture<HTTPHeaders?> {
        guard Self.isEngineIOPath(String(head.uri.prefix { $0 != "?" }), mount: engine.configuration.path) else {
            // Not Socket.IO's: answered as a refused upgrade (this channel takes no others).
            negotiation.decide(.refuse(HTTPCommon.HTTPResponse(status: .badRequest)))
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let responder = webSocketResponder
        let connection = HostConnection(watcher: watcher, remoteAddress: channel.remoteAddress, upgrade: negotiation)
        let promise = channel.eventLoop.makePromise(of: HTTPHeaders?.self)
        promise.completeWithTask {
            let context = Context(source: .init(channel: channel, logger: logger))
            var status = HTTPTypes.HTTPResponse.Status.internalServerError
            var headers = HTTPFields()
            do {
                let head = try HTTPTypes.HTTPRequest(head, secure: false, splitCookie: false)
                let request = Request(head: head, body: .init(buffer: ByteBuffer()))
                do {
                    let response = try await HostConnection.$current.withValue(connection) {
                        try await responder.respond(to: request, context: context)
                    }
                    (status, headers) = (response.status, response.headers)
                } catch let error as any HTTPResponseError {
                    // Refused by the app's middleware, as it would answer the request.
                    let response = try error.response(from: request, context: context)
                    (status, headers) = (response.status, response.headers)
                }
            } catch {
                logger.debug("WebSocket upgrade refused", metadata: ["error": "\(error)"])
            }
            switch negotiation.decided {
            case .accept(let request)?:
                return self.engine.webSocketResponseHeaders(for: request)
            case .refuse?:
                return nil
            case nil:
                // The app's middleware answered before the route was reached (a 401, say).
                negotiation.decide(.refuse(HTTPCommon.HTTPResponse(status: .init(statusCode: status.code), headers: HTTPHeaders(headers))))
                return nil
            }
        }
        return promise.futureResult
    }

    private func write(_ response: HTTPCommon.HTTPResponse, closing http: NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>, logger: Logger) async {
        do {
            try await http.executeThenClose { _, outbound in
                var fields = HTTPFields(response.headers, splitCookie: false)
                fields[.contentLength] = String(response.body.readableBytes)
                fields[.connection] = "close"
                try await outbound.write(.head(HTTPTypes.HTTPResponse(status: .init(code: Int(response.status.code)), headerFields: fields)))
                if response.body.readableBytes > 0 { try await outbound.write(.body(response.body)) }
                try await outbound.write(.end(nil))
            }
        } catch {
            logger.trace("refused upgrade not written", metadata: ["error": "\(error)"])
        }
    }
}
