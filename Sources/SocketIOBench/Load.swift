import Histogram
import NIOCore
import NIOPosix

/// The state of one benchmark run: every client's counters, on the generator's single
/// event loop (so no locks), and the sending schedule.
final class Load: BenchClientDelegate, @unchecked Sendable {
    // @unchecked Sendable: created, read and written on `loop` only (the generator's
    // event loop group has one thread); the scenario code reads it through `loop.submit`.

    let loop: any EventLoop
    let run = String(UInt32.random(in: 0...UInt32.max), radix: 36)
    var clients: [BenchClient] = []
    /// Receivers over long-polling (`--transport polling`), indexed after the senders.
    var pollers: [PollingBenchClient] = []
    var connected = 0
    var closed = 0
    var connectPromise: EventLoopPromise<Void>?
    var expectedConnections = 0

    // Deliveries of benchmark messages, per receiver: the next sequence number expected
    // from each sender, unique and duplicate counts.
    var senderCount = 0
    var nextSequence: [[Int]] = []
    var unique: [Int] = []
    var duplicates: [Int] = []
    var outOfOrder = 0
    var deliveries = 0
    /// Succeeded once `deliveries` reaches the count (the burst scenario's wait).
    var deliveryGoal: (count: Int, promise: EventLoopPromise<Void>)?
    var latency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)  // µs
    /// Per client: the last chat message id and the last recovery offset received.
    var lastID: [Int] = []
    var lastOffset: [String] = []

    // Sending and acks.
    var sent = 0
    var acked = 0
    var ackErrors = 0
    var ackLatency = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    var pendingAcks: [Int: [Int: UInt64]] = [:]  // sender → ack id → send time (ns)
    var nextAckID: [Int] = []
    var sequence: [Int] = []
    var inFlight: [Int] = []

    init(loop: any EventLoop) {
        self.loop = loop
    }

    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    func prepare(receivers: Int, senders: Int) {
        senderCount = senders
        lastID = Array(repeating: 0, count: receivers + senders)
        lastOffset = Array(repeating: "", count: receivers + senders)
        nextSequence = Array(repeating: Array(repeating: 0, count: senders), count: receivers + senders)
        unique = Array(repeating: 0, count: receivers + senders)
        duplicates = Array(repeating: 0, count: receivers + senders)
        nextAckID = Array(repeating: 0, count: senders)
        sequence = Array(repeating: 0, count: senders)
        inFlight = Array(repeating: 0, count: senders)
        pendingAcks = [:]
    }

    // MARK: BenchClientDelegate

    func connected(_ client: any BenchConnection) {
        connected += 1
        if connected == expectedConnections { connectPromise?.succeed(()) }
    }

    func closed(_ client: any BenchConnection) {
        closed += 1
    }

    func received(_ client: any BenchConnection, text: ByteBuffer) {
        let view = text.readableBytesView
        guard view.count > 2 else { return }
        let second = view[view.startIndex + 1]
        if second == UInt8(ascii: "2") {
            delivered(to: client.index, view)
        } else if second == UInt8(ascii: "3") {
            ackReceived(by: client.index, view)
        }
    }

    /// `42[…,"b|<sender>|<seq>|<ns>",…]`: a benchmark message.
    private func delivered(to receiver: Int, _ view: ByteBufferView) {
        guard let start = find(view, [UInt8(ascii: "\""), UInt8(ascii: "b"), UInt8(ascii: "|")]) else {
            // Another event (`chat live`, in a cluster) carries the recovery offset last.
            if receiver < lastOffset.count, view[view.endIndex - 2] == UInt8(ascii: "\""), let open = lastQuote(view, before: view.endIndex - 2) {
                lastOffset[receiver] = String(decoding: view[(open + 1)..<(view.endIndex - 2)], as: UTF8.self)
            }
            return
        }
        var index = start + 3
        guard let sender = number(view, &index), let seq = number(view, &index), let sentAt = number(view, &index) else { return }
        deliveries += 1
        if let goal = deliveryGoal, deliveries >= goal.count {
            deliveryGoal = nil
            goal.promise.succeed(())
        }
        // After the text: `,<id>,{…}[,"<offset>"]]`.
        if index < view.endIndex, view[index] == UInt8(ascii: ","), receiver < lastID.count {
            index += 1
            if let id = number(view, &index, terminator: UInt8(ascii: ",")) { lastID[receiver] = id }
            if view.count > 2, view[view.endIndex - 2] == UInt8(ascii: "\""), let open = lastQuote(view, before: view.endIndex - 2) {
                lastOffset[receiver] = String(decoding: view[(open + 1)..<(view.endIndex - 2)], as: UTF8.self)
            }
        }
        let now = Load.now()
        if now > UInt64(sentAt) { _ = latency.record((now - UInt64(sentAt)) / 1000) }
        guard receiver < nextSequence.count, sender < senderCount else { return }
        let expected = nextSequence[receiver][sender]
        if seq == expected {
            nextSequence[receiver][sender] = seq + 1
            unique[receiver] += 1
        } else if seq < expected {
            duplicates[receiver] += 1
        } else {
            outOfOrder += 1
            unique[receiver] += 1
            nextSequence[receiver][sender] = seq + 1
        }
    }

    /// `43<id>[…]`: an ack for a sender.
    private func ackReceived(by sender: Int, _ view: ByteBufferView) {
        var index = view.startIndex + 2
        guard let id = number(view, &index, terminator: UInt8(ascii: "[")) else { return }
        guard let sentAt = pendingAcks[sender]?.removeValue(forKey: id) else { return }
        acked += 1
        inFlight[sender] -= 1
        if find(view, Array("error".utf8)) != nil { ackErrors += 1 }
        _ = ackLatency.record((Load.now() - sentAt) / 1000)
    }

    private func lastQuote(_ view: ByteBufferView, before end: Int) -> Int? {
        var index = end - 1
        while index >= view.startIndex {
            if view[index] == UInt8(ascii: "\"") { return index }
            index -= 1
        }
        return nil
    }

    private func find(_ view: ByteBufferView, _ needle: [UInt8]) -> Int? {
        guard view.count >= needle.count else { return nil }
        var index = view.startIndex
        let last = view.endIndex - needle.count
        while index <= last {
            if view[index] == needle[0] {
                var match = true
                for offset in 1..<needle.count where view[index + offset] != needle[offset] {
                    match = false
                    break
                }
                if match { return index }
            }
            index += 1
        }
        return nil
    }

    private func number(_ view: ByteBufferView, _ index: inout Int, terminator: UInt8 = UInt8(ascii: "|")) -> Int? {
        var value = 0
        var digits = 0
        while index < view.endIndex, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(view[index]) {
            value = value * 10 + Int(view[index] - UInt8(ascii: "0"))
            index += 1
            digits += 1
        }
        guard digits > 0 else { return nil }
        if index < view.endIndex, view[index] == terminator || view[index] == UInt8(ascii: "\"") { index += 1 }
        return value
    }

    // MARK: Sending

    /// Emits one benchmark message from sender `sender` (a client index), with an ack.
    func send(from sender: Int) {
        let client = clients[sender]
        guard client.isConnected else { return }
        let seq = sequence[sender]
        sequence[sender] += 1
        let id = nextAckID[sender]
        nextAckID[sender] += 1
        let now = Load.now()
        pendingAcks[sender, default: [:]][id] = now
        inFlight[sender] += 1
        sent += 1
        client.send("42\(id)[\"chat message\",\"b|\(sender)|\(seq)|\(now)\",\"\(run)-\(sender)-\(seq)\"]")
    }
}
