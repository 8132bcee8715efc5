import NIOCore

/// A handler placed beneath NIO's `WebSocketFrameEncoder`, whose context lets a connection
/// write frames that `EngineIOOutboundPacket` already encoded straight to the socket.
///
/// Through the encoder, a broadcast frame's shared buffer cannot take its header in place,
/// so every recipient would get a freshly allocated header buffer and two iovecs. Written
/// from here, the one encoded frame goes out as is. The encoder's own output (pongs and close
/// frames, which are rare) passes through it untouched.
final class EncodedFrameWriter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = ByteBuffer

    /// Set while the handler is in a pipeline; used on the channel's event loop only.
    private(set) var context: ChannelHandlerContext?

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }
}
