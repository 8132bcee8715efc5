import Dispatch
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#endif

/// Waits for SIGTERM or SIGINT; from the call on, they no longer end the process.
enum ShutdownSignal {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Int32, Never>)
        case received(Int32)
    }

    static func wait() async -> Int32 {
        let state = NIOLockedValueBox(State.idle)
        let sources = [SIGTERM, SIGINT].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler {
                state.withLockedValue { state in
                    switch state {
                    case .idle: state = .received(number)
                    case .waiting(let continuation):
                        continuation.resume(returning: number)
                        state = .received(number)
                    case .received: break
                    }
                }
            }
            source.resume()
            return source
        }
        let number = await withCheckedContinuation { continuation in
            state.withLockedValue { state in
                if case .received(let number) = state {
                    continuation.resume(returning: number)
                } else {
                    state = .waiting(continuation)
                }
            }
        }
        for source in sources { source.cancel() }  // also keeps them alive until here
        return number
    }
}
