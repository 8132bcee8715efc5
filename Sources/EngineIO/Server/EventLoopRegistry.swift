import NIOConcurrencyHelpers
import NIOCore

/// One value per event loop, made on first use: state that the tasks of one loop share
/// without locks (its WebSocket flush batcher, a namespace's sockets on that loop).
///
/// Entries are keyed by the loop's identity and keep the loop for the registry's life, so
/// that no other loop can take its identity meanwhile; a registry belongs to a server, and
/// lives no longer than it.
///
/// The loop is held strongly on purpose. A weak reference gives the loop a side table, and
/// then every retain and release of it takes the runtime's slow path: NIO retains a
/// channel's loop several times per write, and this cost about 1,400 instructions per
/// broadcast recipient (docs/performance.md).
public final class EventLoopRegistry<Value: Sendable>: Sendable {
    private struct Entry {
        let loop: any EventLoop
        let value: Value
    }

    private struct State {
        var entries: [ObjectIdentifier: Entry] = [:]
        /// Every live value, kept as an array so that visiting all of them allocates nothing.
        var all: [Value] = []
    }

    private let state = NIOLockedValueBox(State())
    private let make: @Sendable (any EventLoop) -> Value

    /// A registry that creates each loop's value with `make`, on first use.
    public init(make: @escaping @Sendable (any EventLoop) -> Value) {
        self.make = make
    }

    /// The value of `loop`, made now if it has none.
    public func value(for loop: any EventLoop) -> Value {
        state.withLockedValue { state in
            let key = ObjectIdentifier(loop)
            if let entry = state.entries[key] {
                assert(entry.loop === loop)  // held, so its identity cannot be reused
                return entry.value
            }
            let value = make(loop)
            state.entries[key] = Entry(loop: loop, value: value)
            state.all = state.entries.values.map(\.value)
            return value
        }
    }

    /// The values of the loops registered so far.
    public var values: [Value] {
        state.withLockedValue { $0.all }
    }
}
