import EngineIO
import NIOCore
import NIOEmbedded
import Redis
import SocketIO

#if canImport(Glibc)
import Glibc
#endif

/// Fuzz targets for the decoders that face the network:
///   eio-payload   the Engine.IO polling payload decoder and the packet parser
///   sio-packet    the Socket.IO packet decoder (text, then binary attachments)
///   sio-msgpack   the socket.io-msgpack-parser packet reader (MessagePack)
///   http-routing  raw bytes into the HTTP/WebSocket pipeline of an EngineIOServer
///   resp          the RESP decoder of the Redis client, fed in random-sized reads
/// Built with `-sanitize=fuzzer -DFUZZING` (scripts/fuzz.sh) it is a libFuzzer binary whose
/// target is chosen by FUZZ_TARGET; built normally it replays corpus files given as
/// arguments (`socketio-fuzz TARGET FILE…`), so crashes found once stay reproducible.
enum FuzzTarget: String, CaseIterable {
    case eioPayload = "eio-payload"
    case sioPacket = "sio-packet"
    case sioMsgpack = "sio-msgpack"
    case httpRouting = "http-routing"
    case resp = "resp"

    func run(_ bytes: UnsafeRawBufferPointer) {
        switch self {
        case .eioPayload:
            let buffer = ByteBuffer(bytes: bytes)
            for packet in EngineIOPayload.decode(buffer) { _ = packet }
            _ = EngineIOInboundPacket(text: String(decoding: bytes, as: UTF8.self)[...])
        case .sioPacket:
            var decoder = SocketIOPacketDecoder()
            // Split the input at 0x00 bytes: the first part is the text packet, the rest
            // are attachments, as they would arrive over a WebSocket.
            let parts = bytes.split(separator: 0, omittingEmptySubsequences: false)
            guard let first = parts.first else { return }
            guard (try? decoder.decode(.text(String(decoding: first, as: UTF8.self)))) != nil else { return }
            for part in parts.dropFirst() {
                guard (try? decoder.decode(.binary(ByteBuffer(bytes: part)))) != nil else { return }
            }
        case .sioMsgpack:
            _ = try? SocketIOPacket(messagePack: ByteBuffer(bytes: bytes))
        case .resp:
            // The first byte sets the read size, as a reply can arrive cut anywhere.
            guard let first = bytes.first else { return }
            let chunk = Int(first) + 1
            var decoder = RESPDecoder()
            var buffer = ByteBuffer()
            var offset = 1
            while offset < bytes.count {
                let end = min(offset + chunk, bytes.count)
                buffer.writeBytes(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]))
                offset = end
                do {
                    while try decoder.decode(buffer: &buffer) != nil {}
                } catch {
                    return
                }
            }
        case .httpRouting:
            let channel = EmbeddedChannel()
            defer { _ = try? channel.finish() }
            guard (try? Fuzzing.server.configureChannel(channel)) != nil else { return }
            _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
            _ = try? channel.writeInbound(ByteBuffer(bytes: bytes))
            channel.embeddedEventLoop.run()
            while (try? channel.readOutbound(as: ByteBuffer.self)) != nil {}
        }
    }
}

enum Fuzzing {
    final class Echo: EngineIOServerDelegate, EngineIOSessionHandler {
        func server(_ server: EngineIOServer, didOpen session: EngineIOSession) -> any EngineIOSessionHandler { Echo() }
        func session(_ session: EngineIOSession, didReceive message: EngineIOMessage) { session.send(message) }
        func session(_ session: EngineIOSession, didCloseWith reason: EngineIOCloseReason) {}
    }

    static let server: EngineIOServer = {
        var configuration = EngineIOConfiguration()
        configuration.maxHttpBufferSize = 4096
        // Compressed frames reach the inflater (a WebSocket upgrade that offers the extension).
        configuration.perMessageDeflate = PerMessageDeflate()
        return EngineIOServer(configuration: configuration, delegate: Echo())
    }()

    static let target: FuzzTarget = {
        let name = getenv("FUZZ_TARGET").map { String(cString: $0) } ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            fatalError("FUZZ_TARGET must be one of \(FuzzTarget.allCases.map(\.rawValue))")
        }
        return target
    }()
}

#if FUZZING
import CFuzzerDriver

/// libFuzzer's runtime refers to this symbol even when driven through LLVMFuzzerRunDriver.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    Fuzzing.target.run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

@main
enum FuzzMain {
    static func main() {
        // SwiftPM renames an executable's main, so hand libFuzzer the arguments explicitly.
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        let status = LLVMFuzzerRunDriver(&argc, &argv) { data, size in fuzzOneInput(data!, size) }
        exit(status)
    }
}
#else
@main
enum ReplayCorpus {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        guard let name = arguments.first, let target = FuzzTarget(rawValue: name) else {
            print("usage: socketio-fuzz \(FuzzTarget.allCases.map(\.rawValue).joined(separator: "|")) FILE…")
            return
        }
        var count = 0
        for path in arguments.dropFirst() {
            guard let file = fopen(path, "rb") else { continue }
            var bytes: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 65536)
            while true {
                let read = fread(&chunk, 1, chunk.count, file)
                if read <= 0 { break }
                bytes += chunk[0..<read]
            }
            fclose(file)
            bytes.withUnsafeBytes { target.run($0) }
            count += 1
        }
        print("\(name): replayed \(count) inputs without a crash")
    }
}
#endif
