import Synchronization

/// Wakes one waiting consumer. A notification that arrives before the wait is kept, so none is lost.
final class WakeSignal: Sendable {
    private struct State {
        var notified = false
        var continuation: UnsafeContinuation<Void, Never>?
    }

    private let state = Mutex(State())
    /// Mirrors `State.notified` so that spinning does not take the lock.
    private let pending = Atomic<Bool>(false)

    /// Forgets notifications that arrived before now.
    func reset() {
        state.withLock { state in
            state.notified = false
            pending.store(false, ordering: .relaxed)
        }
    }

    /// Polls for a notification up to `iterations` times without suspending; returns whether one came.
    func spinUntilNotified(iterations: Int) -> Bool {
        for _ in 0..<iterations where pending.load(ordering: .acquiring) {
            return true
        }
        return false
    }

    func notify() {
        let continuation = state.withLock { state -> UnsafeContinuation<Void, Never>? in
            if let continuation = state.continuation {
                state.continuation = nil
                return continuation
            }
            state.notified = true
            pending.store(true, ordering: .releasing)
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
                        pending.store(false, ordering: .relaxed)
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
