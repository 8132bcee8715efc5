import Hummingbird
import SocketIO

/// What the app's middleware established, as a socket's handshake carries it.
extension SocketIOHandshake {
    /// The Hummingbird request context the handshake request had when it reached the
    /// Socket.IO route: what the app's middleware established (an authenticated user, say).
    /// Nil if Socket.IO is not mounted in Hummingbird, or the app's context is another type.
    public func requestContext<Context: RequestContext>(as type: Context.Type = Context.self) -> Context? {
        hostContext as? Context
    }
}
