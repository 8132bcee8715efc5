import Atomics
import NIOCore

/// Whether an admin UI is watching: connected to this node, or, as the other nodes tell, to
/// another. Reports per socket and per event are made only while one is, so a server with
/// the admin UI on and nobody looking pays nothing per message.
final class AdminAudience: Sendable {
    /// Admin sockets connected to this node.
    private let here = ManagedAtomic(0)
    /// Until when (uptime nanoseconds) another node's admin UI is known to watch.
    private let elsewhereUntil = ManagedAtomic<UInt64>(0)

    func joined() { here.wrappingIncrement(ordering: .relaxed) }
    func left() { here.wrappingDecrement(ordering: .relaxed) }

    /// Whether an admin UI is connected to this node.
    var watchingHere: Bool { here.load(ordering: .relaxed) > 0 }

    /// Another node said its admin UI watches; it says so again before `duration` is out.
    func watchedElsewhere(for duration: TimeAmount) {
        let until = NIODeadline.now().uptimeNanoseconds + UInt64(max(duration.nanoseconds, 0))
        var current = elsewhereUntil.load(ordering: .relaxed)
        while current < until {
            let (exchanged, original) = elsewhereUntil.compareExchange(expected: current, desired: until, ordering: .relaxed)
            if exchanged { return }
            current = original
        }
    }

    /// Whether an admin UI watches, here or elsewhere.
    var isWatched: Bool {
        watchingHere || NIODeadline.now().uptimeNanoseconds < elsewhereUntil.load(ordering: .relaxed)
    }
}
