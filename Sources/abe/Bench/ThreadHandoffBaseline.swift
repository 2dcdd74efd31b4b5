import AbstractBackend
import Foundation
import Synchronization

/// The baseline of `abe bench` for providers that do their blocking I/O on a thread they own (the
/// file spool's writer, a Redis connection): the `publish-concurrent` loop — 64 tasks, the same
/// payloads, latency per call — where each call only hands its continuation to such a thread and
/// is resumed by it, with no I/O and no encoding in between.
///
/// The thread works like the providers' threads: it takes everything queued in one go, resumes
/// it, watches the queue for 50 µs before it sleeps, and is signalled only when asleep. The line
/// is the ceiling of any provider built that way on this machine; it shows how much of a
/// provider's `publish-concurrent` figure is task scheduling rather than the provider's own work.
enum ThreadHandoffBaseline {
    static func publishConcurrent(messages: BenchMessages, tasks: Int = 64) async throws -> BenchResult {
        let thread = HandoffThread()
        defer { thread.stop() }
        var (timing, latencies) = try await messages.publishConcurrently(tasks: tasks) { _ in
            await thread.roundTrip()
        }
        return BenchResult(
            backend: "thread-handoff", scenario: "publish-concurrent", messages: messages.count,
            payloadBytes: messages.payloadBytes, timing: timing, latency: LatencySummary(nanoseconds: &latencies)
        )
    }
}

/// A thread that resumes whatever continuations are handed to it.
private final class HandoffThread: Sendable {
    private struct Queue {
        var waiting: [UnsafeContinuation<Void, Never>] = []
        var stopped = false
    }

    private let queue = Mutex(Queue())
    private let wakeup = NSCondition()
    private let sleeping = Atomic<Bool>(false)

    init() {
        let thread = Thread { [self] in run() }
        thread.name = "abe-bench-handoff"
        thread.start()
    }

    /// Returns once the thread has resumed the caller.
    func roundTrip() async {
        await withUnsafeContinuation { (continuation: UnsafeContinuation<Void, Never>) in
            queue.withLock { $0.waiting.append(continuation) }
            if sleeping.load(ordering: .sequentiallyConsistent) { wake() }
        }
    }

    func stop() {
        queue.withLock { $0.stopped = true }
        wake()
    }

    private func wake() {
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    private func run() {
        while true {
            let (batch, stopped) = queue.withLock { queue in
                defer { queue.waiting.removeAll(keepingCapacity: true) }
                return (queue.waiting, queue.stopped)
            }
            for continuation in batch { continuation.resume() }
            if stopped { return }
            if !batch.isEmpty || spin(for: .microseconds(50), until: { queue.withLock { !$0.waiting.isEmpty || $0.stopped } }) { continue }
            wakeup.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            if queue.withLock({ $0.waiting.isEmpty && !$0.stopped }) { wakeup.wait() }
            sleeping.store(false, ordering: .sequentiallyConsistent)
            wakeup.unlock()
        }
    }
}
