import HTTPCommon
import NIOHTTP1
import Testing

@testable import EngineIO

@Suite struct RequestVerificationTests {
    let configuration = EngineIOConfiguration()

    private func verify(
        _ query: [String: String], method: HTTPMethod = .GET, upgrade: Bool = false,
        origin: String? = nil, host: String? = "example.com:3000",
        sessions: [String: EngineIOTransportKind] = [:], configuration: EngineIOConfiguration? = nil
    ) -> Result<EngineIORequest.Route, EngineIORequestError> {
        EngineIORequest(method: method, query: query, isWebSocketUpgrade: upgrade, origin: origin, host: host)
            .verify(configuration: configuration ?? self.configuration) { sessions[$0] }
    }

    @Test func acceptsHandshakes() {
        #expect(verify(["EIO": "4", "transport": "polling"]) == .success(.handshake(.polling)))
        #expect(verify(["EIO": "4", "transport": "websocket"], upgrade: true) == .success(.handshake(.websocket)))
    }

    @Test func unknownTransportIsCode0() {
        #expect(verify(["EIO": "4", "transport": "carrier-pigeon"]) == .failure(.unknownTransport))
        #expect(verify(["EIO": "4"]) == .failure(.unknownTransport))
        var pollingOnly = configuration
        pollingOnly.transports = [.polling]
        #expect(verify(["EIO": "4", "transport": "websocket"], upgrade: true, configuration: pollingOnly) == .failure(.unknownTransport))
    }

    @Test func unknownSessionIsCode1() {
        #expect(verify(["EIO": "4", "transport": "polling", "sid": "nope"]) == .failure(.unknownSessionID))
    }

    @Test func handshakeByPostIsCode2() {
        #expect(verify(["EIO": "4", "transport": "polling"], method: .POST) == .failure(.badHandshakeMethod))
    }

    @Test func mismatchedTransportsAreCode3() {
        // A WebSocket handshake without the Upgrade headers.
        #expect(verify(["EIO": "4", "transport": "websocket"]) == .failure(.badRequest))
        // A polling request on a session that was upgraded.
        #expect(verify(["EIO": "4", "transport": "polling", "sid": "s"], sessions: ["s": .websocket]) == .failure(.badRequest))
        // A second WebSocket on an upgraded session is not refused: as the reference does
        // (and the official suites expect), its handshake completes and the session then
        // closes it.
        #expect(verify(["EIO": "4", "transport": "websocket", "sid": "s"], upgrade: true, sessions: ["s": .websocket]) == .success(.upgrade(sid: "s")))
        // A control character in the Origin header.
        #expect(verify(["EIO": "4", "transport": "polling"], origin: "http://a\u{1}b") == .failure(.badRequest))
    }

    @Test func refusedOriginIsCode4() {
        #expect(verify(["EIO": "4", "transport": "polling"], origin: "http://evil.example") == .failure(.forbidden))
        #expect(verify(["EIO": "4", "transport": "websocket"], upgrade: true, origin: "http://evil.example") == .failure(.forbidden))
        #expect(verify(["EIO": "4", "transport": "polling"], origin: "http://example.com:3000") == .success(.handshake(.polling)))
        var listed = configuration
        listed.cors = CORSPolicy(parsing: "http://good.example, http://other.example")
        #expect(verify(["EIO": "4", "transport": "polling"], origin: "http://good.example", configuration: listed) == .success(.handshake(.polling)))
        #expect(verify(["EIO": "4", "transport": "polling"], origin: "http://evil.example", configuration: listed) == .failure(.forbidden))
    }

    @Test func allowedHostsMatchTheHostHeaderWithoutItsPort() {
        #expect(AllowedHosts.any.allows(hostHeader: nil))
        #expect(AllowedHosts(parsing: " ").acceptsAny)
        #expect(AllowedHosts(parsing: "a.example, *").acceptsAny)
        let hosts = AllowedHosts(parsing: "Chat.Example, *.example.org, [::1]")
        #expect(hosts.allows(hostHeader: "chat.example"))
        #expect(hosts.allows(hostHeader: "CHAT.example:3000"))
        #expect(hosts.allows(hostHeader: "deep.sub.example.org"))
        #expect(hosts.allows(hostHeader: "[::1]:3000"))
        #expect(!hosts.allows(hostHeader: "example.org"))  // the wildcard is for subdomains
        #expect(!hosts.allows(hostHeader: "chat.example.evil"))
        #expect(!hosts.allows(hostHeader: "evilexample.org"))
        #expect(!hosts.allows(hostHeader: nil))
    }

    @Test func otherProtocolVersionsAreCode5() {
        #expect(verify(["EIO": "3", "transport": "polling"]) == .failure(.unsupportedProtocolVersion))
        #expect(verify(["transport": "polling"]) == .failure(.unsupportedProtocolVersion))
    }

    @Test func routesExistingSessions() {
        let sessions: [String: EngineIOTransportKind] = ["s": .polling]
        #expect(verify(["EIO": "4", "transport": "polling", "sid": "s"], sessions: sessions) == .success(.poll(sid: "s")))
        #expect(verify(["EIO": "4", "transport": "polling", "sid": "s"], method: .POST, sessions: sessions) == .success(.poll(sid: "s")))
        #expect(verify(["EIO": "4", "transport": "websocket", "sid": "s"], upgrade: true, sessions: sessions) == .success(.upgrade(sid: "s")))
    }

    @Test func errorBodiesMatchTheReference() {
        #expect(EngineIORequestError.unknownTransport.body == #"{"code":0,"message":"Transport unknown"}"#)
        #expect(EngineIORequestError.unknownSessionID.body == #"{"code":1,"message":"Session ID unknown"}"#)
        #expect(EngineIORequestError.badHandshakeMethod.body == #"{"code":2,"message":"Bad handshake method"}"#)
        #expect(EngineIORequestError.badRequest.body == #"{"code":3,"message":"Bad request"}"#)
        #expect(EngineIORequestError.forbidden.body == #"{"code":4,"message":"Forbidden"}"#)
        #expect(EngineIORequestError.unsupportedProtocolVersion.body == #"{"code":5,"message":"Unsupported protocol version"}"#)
        #expect(EngineIORequestError.forbidden.httpStatus == 403)
        #expect(EngineIORequestError.badRequest.httpStatus == 400)
    }

    @Test func parsesQueries() {
        let query = URLQuery.parse("EIO=4&transport=polling&t=Nx%2Fz&a+b=c+d&EIO=3&flag")
        #expect(query["EIO"] == "4")
        #expect(query["t"] == "Nx/z")
        #expect(query["a b"] == "c d")
        #expect(query["flag"] == "")
    }

    @Test func matchesTheMountPath() {
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/socket.io/?EIO=4&transport=polling")
        #expect(EngineIORequest(head: head, mountPath: "/socket.io/")?.query["EIO"] == "4")
        let bare = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/socket.io?EIO=4")
        #expect(EngineIORequest(head: bare, mountPath: "/socket.io/") != nil)
        let other = HTTPRequestHead(version: .http1_1, method: .GET, uri: "/socket.io/x?EIO=4")
        #expect(EngineIORequest(head: other, mountPath: "/socket.io/") == nil)
    }
}
