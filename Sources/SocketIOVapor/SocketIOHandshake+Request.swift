import SocketIO
import Vapor

/// What the app's middleware established, as a socket's handshake carries it.
extension SocketIOHandshake {
    /// The Vapor request that opened the session, as it reached the Socket.IO route: what
    /// the app's middleware established is in it (`request.auth`, `request.storage`). Nil
    /// if Socket.IO is not mounted in Vapor.
    public var vaporRequest: Request? {
        hostContext as? Request
    }
}
