import NIOConcurrencyHelpers
import NIOCore

/// One connection of a host, as Engine.IO needs to know it: the event loop a session opened
/// on it lives on, and when it closes, so that a polling GET whose client gave up closes its
/// session ("transport error") as it does on the server's own listener.
///
/// A host puts one in the pipeline of each connection whose requests it hands to
/// `EngineIOServer.respond(to:on:body:)`; it passes every event on untouched.
public final class EngineIOHostConnection: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    /// Whatever the connection carries: it is passed on untouched.
    public typealias InboundIn = NIOAny

    /// The connection's event loop.
    public let eventLoop: any EventLoop

    private struct Watch {
        var token: UInt64
        var onClose: @Sendable () -> Void
    }

    private struct State {
        var closed = false
        /// The GET held on this connection, if any: at most one, as HTTP/1.1 answers in order.
        var watch: Watch?
    }

    // One lock, taken twice per held GET (watch, unwatch) and once at close: the request's
    // task and the channel's loop both reach it.
    private let state = NIOLockedValueBox(State())

    /// A watcher for a connection on `eventLoop`.
    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `onClose` if the connection closes before `unwatch(token)`; at once if it has.
    func watch(token: UInt64, onClose: @escaping @Sendable () -> Void) {
        let closed = state.withLockedValue { state -> Bool in
            guard !state.closed else { return true }
            state.watch = Watch(token: token, onClose: onClose)
            return false
        }
        if closed { onClose() }
    }

    func unwatch(token: UInt64) {
        state.withLockedValue { state in
            if state.watch?.token == token { state.watch = nil }
        }
    }

    /// Passes the event on, after telling the held GET's session.
    public func channelInactive(context: ChannelHandlerContext) {
        closed()
        context.fireChannelInactive()
    }

    /// Passes the event on; a client that closed its side (a host that allows half-closure
    /// reports it so) has given up on a held GET as surely as one that reset the connection.
    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { closed() }
        context.fireUserInboundEventTriggered(event)
    }

    /// The connection is gone: for the owner's stand-in of a request that another node of
    /// the cluster holds, when that node says its client went away.
    func markClosed() {
        closed()
    }

    private func closed() {
        let watch = state.withLockedValue { state -> Watch? in
            state.closed = true
            defer { state.watch = nil }
            return state.watch
        }
        watch?.onClose()
    }
}
