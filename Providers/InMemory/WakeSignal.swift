import Synchronization

/// Wakes one waiting consumer. A notification that arrives before the wait is kept, so none is lost.
final class WakeSignal: Sendable {
    private struct State {
        var notified = false
        var continuation: UnsafeContinuation<Void, Never>?
    }

    private let state = Mutex(State())

    /// Forgets notifications that arrived before now.
    func reset() {
        state.withLock { $0.notified = false }
    }

    func notify() {
        let continuation = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let continuation = state.continuation {
                state.continuation = nil
                return continuation
            }
            state.notified = true
            return nil
        }
        continuation?.resume()
    }

    /// Returns after a notification, after `deadline`, or when the task is cancelled.
    func wait(until deadline: ContinuousClock.Instant?) async {
        let timer = deadline.map { deadline in
            Task { [self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                notify()
            }
        }
        await withTaskCancellationHandler {
            await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
                let resumeNow = state.withLock { state -> Bool in
                    if state.notified {
                        state.notified = false
                        return true
                    }
                    state.continuation = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            notify()
        }
        timer?.cancel()
    }
}
