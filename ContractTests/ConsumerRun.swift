import AbstractBackend
import Synchronization

/// One ``MessageConsumer`` running in its own task, with a record of what its handler saw.
///
/// The handler made by ``make(backend:group:keys:concurrency:retryPolicy:shutdownTimeout:behaviour:)``
/// decides per message what to do (return, throw, wait); the record keeps every call in order,
/// how many ran at once, and how ``MessageConsumer/run()`` ended.
final class ConsumerRun: Sendable {
    /// One handler call.
    struct Call: Sendable {
        var message: MessageQueueMessage
        var startedAt: ContinuousClock.Instant
        var finished: Bool
        var failed: Bool
    }

    /// What the handler does with one message; it runs inside the handler, so it may wait or throw.
    typealias Behaviour = @Sendable (MessageQueueMessage) async throws -> Void

    private struct State {
        var calls: [Call] = []
        var running = 0
        var mostRunning = 0
        var ending: Result<Void, any Error>?
        var endedAt: ContinuousClock.Instant?
    }

    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let made = Mutex<MessageConsumer?>(nil)

    private init() {}

    /// The consumer being run.
    var consumer: MessageConsumer { made.withLock { $0! } }

    /// Makes a consumer whose handler records each call and then applies `behaviour`.
    static func make(
        backend: any MessageQueueBackend,
        group: ConsumerGroup?,
        keys: [MessageQueueKey]?,
        concurrency: Int = 1,
        retryPolicy: RetryPolicy = .immediate,
        shutdownTimeout: Duration = .seconds(5),
        behaviour: @escaping Behaviour = { _ in }
    ) throws -> ConsumerRun {
        let run = ConsumerRun()
        let consumer = try MessageConsumer(
            backend: backend, group: group, keys: keys, concurrency: concurrency,
            retryPolicy: retryPolicy, shutdownTimeout: shutdownTimeout
        ) { [weak run] message in
            guard let run else { return }
            let index = run.began(message)
            do {
                try await behaviour(message)
                run.ended(index, failed: false)
            } catch {
                run.ended(index, failed: true)
                throw error
            }
        }
        run.made.withLock { $0 = consumer }
        return run
    }

    /// Runs the consumer in a task of its own.
    func start() {
        task.withLock { $0 = Task { await self.runConsumer() } }
    }

    private func runConsumer() async {
        let result: Result<Void, any Error>
        do {
            try await consumer.run()
            result = .success(())
        } catch {
            result = .failure(error)
        }
        state.withLock {
            $0.ending = result
            $0.endedAt = .now
        }
    }

    private func began(_ message: MessageQueueMessage) -> Int {
        state.withLock { state in
            state.calls.append(Call(message: message, startedAt: .now, finished: false, failed: false))
            state.running += 1
            state.mostRunning = max(state.mostRunning, state.running)
            return state.calls.count - 1
        }
    }

    private func ended(_ index: Int, failed: Bool) {
        state.withLock { state in
            state.calls[index].finished = true
            state.calls[index].failed = failed
            state.running -= 1
        }
    }

    /// Every handler call so far, in the order they started.
    var calls: [Call] { state.withLock(\.calls) }

    /// The most handler calls that were running at the same time.
    var mostRunning: Int { state.withLock(\.mostRunning) }

    /// How `run()` ended, once it has.
    var ending: Result<Void, any Error>? { state.withLock(\.ending) }

    /// Waits until `condition` holds for the calls so far, or `timeout` passes (`false`).
    func wait(timeout: Duration, until condition: @escaping ([Call]) -> Bool) async throws -> Bool {
        try await Bounded.poll(timeout: timeout) { condition(self.calls) }
    }

    /// Waits until `run()` has returned, or `timeout` passes (`false`).
    func waitForEnd(timeout: Duration) async throws -> Bool {
        try await Bounded.poll(timeout: timeout) { self.ending != nil }
    }

    /// Cancels the task running the consumer, for the end of a test; does not wait.
    func cancel() {
        task.withLock { $0 }?.cancel()
    }
}
