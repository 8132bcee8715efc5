import NIOConcurrencyHelpers
import NIOCore

/// One value per event loop, made on first use: state that the tasks of one loop share
/// without locks (its WebSocket flush batcher, a namespace's sockets on that loop).
///
/// Entries are keyed by the loop's identity and hold the loop weakly: an entry whose loop
/// is gone is dropped when the next loop registers, and an identity that a new loop reuses
/// never finds the old loop's value.
public final class EventLoopRegistry<Value: Sendable>: Sendable {
    private struct Entry {
        weak var loop: (any EventLoop)?
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
            if let entry = state.entries[key], entry.loop === loop { return entry.value }
            state.entries = state.entries.filter { $0.value.loop != nil }
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
