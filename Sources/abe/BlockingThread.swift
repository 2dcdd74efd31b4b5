import Foundation
import Synchronization

/// A thread of `abe`'s own for calls that may block — reading standard input, which waits for
/// the writer, and file-system checks — so they never hold a thread of Swift's cooperative pool.
/// Jobs run one at a time, in order.
final class BlockingThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }

    private let state = Mutex(State())
    private let wakeup = NSCondition()

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result. After ``stop()`` it runs on the
    /// caller's thread instead, so a late caller is never left waiting.
    func run<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            let accepted = state.withLock { state -> Bool in
                guard !state.stopped else { return false }
                state.jobs.append { continuation.resume(returning: body()) }
                return true
            }
            if accepted {
                wakeup.lock()
                wakeup.signal()
                wakeup.unlock()
            } else {
                continuation.resume(returning: body())
            }
        }
    }

    /// Ends the thread once the jobs queued so far have run.
    func stop() {
        state.withLock { $0.stopped = true }
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    private func loop() {
        while true {
            let (jobs, stopped) = state.withLock { state in
                defer { state.jobs.removeAll() }
                return (state.jobs, state.stopped)
            }
            for job in jobs { job() }
            if stopped && jobs.isEmpty { return }
            if !jobs.isEmpty { continue }
            wakeup.lock()
            if state.withLock({ $0.jobs.isEmpty && !$0.stopped }) { wakeup.wait() }
            wakeup.unlock()
        }
    }
}
