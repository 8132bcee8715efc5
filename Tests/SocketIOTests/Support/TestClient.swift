import SocketIOTesting

/// The raw in-process client: the wire beneath `SocketIOTestClient`, for tests that speak
/// the protocol packet by packet.
typealias TestClient = WireClient
