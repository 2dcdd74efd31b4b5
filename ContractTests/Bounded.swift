import Synchronization

/// Waits that always end: the building blocks that keep a broken provider from hanging the suite.
enum Bounded {
    /// Runs `operation` in its own task and returns its result, or `nil` when `timeout` passes
    /// first. On timeout the task is cancelled but not awaited, so an operation that ignores
    /// cancellation cannot hang the caller.
    static func run<T: Sendable>(
        timeout: Duration,
        _ operation: @escaping @Sendable () async throws -> T
    ) async throws -> T? {
        let outcome = OneShot<Result<T, any Error>?>()
        let work = Task {
            do {
                outcome.fulfil(.success(try await operation()))
            } catch {
                outcome.fulfil(.failure(error))
            }
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            outcome.fulfil(nil)
        }
        let result = await withTaskCancellationHandler {
            await outcome.value()
        } onCancel: {
            outcome.fulfil(.failure(CancellationError()))
        }
        work.cancel()
        timer.cancel()
        return try result?.get()
    }

    /// Checks `condition` every few milliseconds until it holds (`true`) or `timeout` passes (`false`).
    static func poll(timeout: Duration, _ condition: () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if condition() { return true }
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}

/// A value set once, by whoever comes first, and awaited by one waiter.
final class OneShot<Value: Sendable>: Sendable {
    private struct State {
        var value: Value?
        var isSet = false
        var waiter: CheckedContinuation<Value, Never>?
    }

    private let state = Mutex(State())

    /// Sets the value unless it was set already; later calls do nothing.
    func fulfil(_ value: Value) {
        let waiter = state.withLock { state -> CheckedContinuation<Value, Never>? in
            guard !state.isSet else { return nil }
            state.isSet = true
            guard let waiter = state.waiter else {
                state.value = value
                return nil
            }
            state.waiter = nil
            return waiter
        }
        waiter?.resume(returning: value)
    }

    /// The value, once set. Only one caller may wait.
    func value() async -> Value {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> Value? in
                if state.isSet, let value = state.value {
                    state.value = nil
                    return value
                }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}

/// A counter shared with a child task, so a timeout message can say how far the work got.
final class ProgressCounter: Sendable {
    private let value = Atomic<Int>(0)

    func increment() { value.add(1, ordering: .relaxed) }

    var current: Int { value.load(ordering: .relaxed) }
}
