import NIOCore
import Redis
import SocketIO

/// The cluster is its adapters' bus: a channel per namespace, a Redis string numbering
/// its recoverable broadcasts, a stream logging them, and a key per session record.
extension RedisCluster: ClusterBus {
    /// Number, log and publish in one script: Redis runs scripts one at a time, so numbers
    /// are consecutive and every subscriber receives them in order. KEYS: sequence, log.
    /// ARGV: the channel, the log's length bound, then the messages. Each is published as
    /// `<number>:<message>`; an unnumbered one as `0:<message>`.
    static let publishScript = """
        if redis.call('EXISTS', KEYS[1]) == 0 then
          -- A Redis that lost its data goes on above any number issued before, from the
          -- clock at a thousand per millisecond: an old offset never names a new packet.
          local t = redis.call('TIME')
          redis.call('SET', KEYS[1], string.format('%d', tonumber(t[1]) * 1000000 + math.floor(tonumber(t[2]) / 1000) * 1000))
        end
        local t = redis.call('TIME')
        local ms = string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
        local last = 0
        for i = 3, #ARGV do
          last = redis.call('INCR', KEYS[1])
          local n = string.format('%d', last)
          redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '0-' .. n, 't', ms, 'm', ARGV[i])
          redis.call('PUBLISH', ARGV[1], n .. ':' .. ARGV[i])
        end
        return last
        """

    func countNodes() -> EventLoopFuture<Int> { refreshNodeCount() }

    func publishNumbered(_ messages: [ByteBuffer], namespace: String, logLength: Int) -> EventLoopFuture<Void> {
        let keys = ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace)
        let arguments = ["EVAL", Self.publishScript, "2", keys.sequence, keys.log, keys.channel, String(logLength)].map { ByteBuffer(string: $0) }
        return send(arguments + messages).map { _ in }
    }

    func publish(_ message: ByteBuffer, namespace: String) -> EventLoopFuture<Void> {
        // On the command connection, as the numbered ones: one node's messages keep their order.
        var payload = ByteBuffer(string: "0:")
        payload.writeImmutableBuffer(message)
        return send([ByteBuffer(string: "PUBLISH"), ByteBuffer(string: ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).channel), payload])
            .map { _ in }
    }

    func latestNumber(namespace: String) -> EventLoopFuture<UInt64?> {
        send("GET", ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).sequence).map { $0.string.flatMap(UInt64.init) }
    }

    func readLog(namespace: String, from: UInt64, through: UInt64, limit: Int) -> EventLoopFuture<[ClusterLogEntry]> {
        let log = ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).log
        return send("XRANGE", log, "0-\(from)", "0-\(through)", "COUNT", String(limit)).map(Self.entries)
    }

    /// Parses an XRANGE reply: `[[id, [field, value, …]], …]`, ids `0-<number>`, fields `t`
    /// (milliseconds) and `m` (the message).
    static func entries(_ reply: RESPValue) -> [ClusterLogEntry] {
        (reply.array ?? []).compactMap { entry in
            guard let parts = entry.array, parts.count == 2, let id = parts[0].string, let fields = parts[1].array,
                let number = id.split(separator: "-").last.flatMap({ UInt64($0) })
            else { return nil }
            var time: Int64 = 0
            var message: ByteBuffer?
            var index = 0
            while index + 1 < fields.count {
                switch fields[index].string {
                case "t": time = fields[index + 1].string.flatMap { Int64($0) } ?? 0
                case "m": if case .bulkString(let bytes?) = fields[index + 1] { message = bytes }
                default: break
                }
                index += 2
            }
            return message.map { ClusterLogEntry(number: number, milliseconds: time, message: $0) }
        }
    }

    func storeSession(_ record: String, pid: String, namespace: String, lasting: TimeAmount) {
        let key = ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).session(pid)
        _ = send("SET", key, record, "PX", String(max(lasting.nanoseconds / 1_000_000, 1)))
    }

    func takeSession(pid: String, namespace: String) -> EventLoopFuture<String?> {
        // GETDEL: read and gone in one command, so one node at most gets it.
        send("GETDEL", ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).session(pid)).map(\.string)
    }

    func deleteSession(pid: String, namespace: String) {
        _ = send("DEL", ClusterKeys(prefix: configuration.keyPrefix, namespace: namespace).session(pid))
    }

    /// A message on a namespace's channel: `<number>:<message>`, number 0 for none.
    static func split(_ payload: ByteBuffer) -> (number: UInt64?, message: ByteBuffer)? {
        var payload = payload
        guard let colon = payload.readableBytesView.firstIndex(of: UInt8(ascii: ":")),
            let number = payload.readString(length: colon - payload.readerIndex).flatMap(UInt64.init)
        else { return nil }
        payload.moveReaderIndex(forwardBy: 1)
        return (number == 0 ? nil : number, payload)
    }
}
