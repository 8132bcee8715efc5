import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

@testable import EngineIO

/// The test-only cluster bus: the nodes of one process, each message handed over on one
/// event loop (so one node's messages to another keep their order, as over Redis). A node
/// that `leave`s stops listening, as a killed node's Redis subscription ends.
final class InProcessBus: Sendable {
    private let nodes = NIOLockedValueBox<[String: @Sendable (ByteBuffer) -> Void]>([:])
    private let loop = MultiThreadedEventLoopGroup.singleton.next()
    /// The next message that holds an envelope this matches is lost, as a subscription that
    /// dropped for a moment loses what was published meanwhile.
    private let losing = NIOLockedValueBox<Loss?>(nil)

    /// In a struct: a closure stored bare in a lock box is wrapped again at every access.
    private struct Loss {
        let matches: @Sendable (ClusterEnvelope) -> Bool
        let lost: EventLoopPromise<Void>
    }

    /// Loses the next message that holds an envelope `matches` accepts; the future succeeds
    /// once it is lost.
    @discardableResult
    func loseNext(where matches: @escaping @Sendable (ClusterEnvelope) -> Bool) -> EventLoopFuture<Void> {
        let lost = loop.makePromise(of: Void.self)
        losing.withLockedValue { $0 = Loss(matches: matches, lost: lost) }
        return lost.futureResult
    }

    /// Whether `message` is the one to lose (once).
    fileprivate func loses(_ message: ByteBuffer) -> Bool {
        let lost = losing.withLockedValue { losing -> EventLoopPromise<Void>? in
            guard let loss = losing, let envelope = ClusterEnvelope(decoding: message) else { return nil }
            let all: [ClusterEnvelope]
            if case .batch(let inner) = envelope { all = inner } else { all = [envelope] }
            guard all.contains(where: loss.matches) else { return nil }
            losing = nil
            return loss.lost
        }
        lost?.succeed()
        return lost != nil
    }

    /// A node of the bus; ids of one length, as `EngineIOClusterBus` asks.
    func node(_ id: String) -> Node { Node(id: id, bus: self) }

    func leave(_ id: String) {
        nodes.withLockedValue { _ = $0.removeValue(forKey: id) }
    }

    struct Node: EngineIOClusterBus {
        let id: String
        let bus: InProcessBus
        var nodeID: String { id }

        func send(_ message: ByteBuffer, to node: String) -> EventLoopFuture<Bool> {
            let handler = bus.nodes.withLockedValue { $0[node] }
            guard let handler else { return bus.loop.makeSucceededFuture(false) }
            if bus.loses(message) { return bus.loop.makeSucceededFuture(true) }
            bus.loop.execute { handler(message) }
            return bus.loop.makeSucceededFuture(true)
        }

        func onReceive(_ handler: @escaping @Sendable (ByteBuffer) -> Void) {
            bus.nodes.withLockedValue { $0[id] = handler }
        }
    }
}
