import Foundation
import Synchronization

/// A thread of one's own, running blocking work (file I/O, `flock` waits, `fdatasync`, reading
/// standard input) one job at a time, in order, so that Swift's cooperative pool never blocks on
/// the disk, a pipe or another process. Shared by the file spool and the `abe` tool.
package final class OwnedThread: Sendable {
    private struct State {
        var jobs: [@Sendable () -> Void] = []
        var stopped = false
    }

    private let state = Mutex(State())
    private let wakeup = NSCondition()
    /// Whether the thread waits on `wakeup`: only then does `submit` signal it.
    private let sleeping = Atomic<Bool>(false)

    /// How long an idle thread watches for the next job before it sleeps: a caller that submits
    /// again right after being resumed (an iterator acknowledging message after message) then
    /// finds it awake, saving a futex wake-up on each side.
    static let spinTime = Duration.microseconds(50)

    package init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    /// Runs `body` on the thread and returns its result.
    package func run<Result: Sendable, Failure: Error>(_ body: @escaping @Sendable () throws(Failure) -> Result) async throws(Failure) -> Result {
        let outcome = await withUnsafeContinuation { (continuation: UnsafeContinuation<Swift.Result<Result, Failure>, Never>) in
            submit {
                do throws(Failure) {
                    continuation.resume(returning: .success(try body()))
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
        }
        return try outcome.get()
    }

    /// Queues `job`; after ``stop()`` it runs at once on the caller's thread instead, so a late
    /// caller is never left waiting.
    package func submit(_ job: @escaping @Sendable () -> Void) {
        let accepted = state.withLock { state -> Bool in
            guard !state.stopped else { return false }
            state.jobs.append(job)
            return true
        }
        guard accepted else {
            job()
            return
        }
        if sleeping.load(ordering: .sequentiallyConsistent) { signal() }
    }

    /// Ends the thread once the jobs queued so far have run.
    package func stop() {
        state.withLock { $0.stopped = true }
        signal()
    }

    private func signal() {
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
            if !jobs.isEmpty || spin(for: Self.spinTime, until: { state.withLock { !$0.jobs.isEmpty || $0.stopped } }) { continue }
            wakeup.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if state.withLock({ $0.jobs.isEmpty && !$0.stopped }) { wakeup.wait() }
            sleeping.store(false, ordering: .sequentiallyConsistent)
            wakeup.unlock()
        }
    }
}
