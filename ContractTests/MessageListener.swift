import AbstractBackend
import Synchronization

/// One member of a group, iterating a `consume(…)` sequence in its own task and recording what it
/// receives, so a check can wait for deliveries with a bound, look at their timing, and stop the
/// member by cancelling its task.
final class MessageListener: Sendable {
    /// One delivery and when the member received it.
    struct Delivery: Sendable {
        let message: MessageQueueMessage
        let receivedAt: ContinuousClock.Instant
    }

    /// How the member's iteration ended.
    enum Ending: Sendable {
        /// It received its `limit` and stopped iterating.
        case limitReached
        /// The sequence ended (`next()` returned `nil`).
        case finished
        /// `next()`, or an acknowledgement, threw.
        case failed(any Error)
    }

    private struct State {
        var deliveries: [Delivery] = []
        var ending: Ending?
        var endedAt: ContinuousClock.Instant?
    }

    /// Names the sequence in failure messages, such as `consume(group: "g") as member 2`.
    let label: String
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)

    /// Starts iterating `messages`.
    ///
    /// - Parameters:
    ///   - ack: Whether to acknowledge each message after `processing`.
    ///   - processing: Time spent per message before acknowledging it; cancelling the member cuts it short.
    ///   - limit: Stop iterating after this many messages, so a member never takes (and, when
    ///     acknowledging, consumes) more than the check wants.
    init(
        _ messages: some AsyncSequence<MessageQueueMessage, any Error> & Sendable,
        label: String,
        ack: Bool,
        processing: Duration? = nil,
        limit: Int? = nil
    ) {
        self.label = label
        let started = Task { [self] in
            await run(messages, ack: ack, processing: processing, limit: limit)
        }
        task.withLock { $0 = started }
    }

    private func run(
        _ messages: some AsyncSequence<MessageQueueMessage, any Error> & Sendable,
        ack: Bool,
        processing: Duration?,
        limit: Int?
    ) async {
        do {
            var count = 0
            for try await message in messages {
                let receivedAt = ContinuousClock.now
                // Recorded before acknowledging so timing is exact; a check that needs the
                // acknowledgement done waits for `limitReached` instead.
                state.withLock { $0.deliveries.append(Delivery(message: message, receivedAt: receivedAt)) }
                count += 1
                if let processing { try? await Task.sleep(for: processing) }
                if ack { try await message.ack() }
                if let limit, count >= limit {
                    end(.limitReached)
                    return
                }
            }
            end(.finished)
        } catch {
            end(.failed(error))
        }
    }

    private func end(_ ending: Ending) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.ending = ending
            state.endedAt = now
        }
    }

    /// Everything received so far, in order of receipt.
    var deliveries: [Delivery] { state.withLock(\.deliveries) }
    /// The messages received so far, in order of receipt.
    var messages: [MessageQueueMessage] { deliveries.map(\.message) }
    /// How many messages were received so far.
    var count: Int { state.withLock(\.deliveries.count) }
    /// How the iteration ended, or `nil` while it runs.
    var ending: Ending? { state.withLock(\.ending) }
    /// When the iteration ended, or `nil` while it runs.
    var endedAt: ContinuousClock.Instant? { state.withLock(\.endedAt) }

    /// Waits until `condition` holds for the deliveries so far, the iteration ends, or `timeout`
    /// passes. Returns whether `condition` holds.
    func wait(timeout: Duration, until condition: ([Delivery]) -> Bool) async throws -> Bool {
        _ = try await Bounded.poll(timeout: timeout) {
            state.withLock { condition($0.deliveries) || $0.ending != nil }
        }
        return state.withLock { condition($0.deliveries) }
    }

    /// Waits until at least `count` messages arrived, the iteration ends, or `timeout` passes.
    func wait(forCount count: Int, timeout: Duration) async throws -> Bool {
        try await wait(timeout: timeout) { $0.count >= count }
    }

    /// Waits until the iteration ended, at most `timeout`. Returns whether it did.
    func waitForEnd(timeout: Duration) async throws -> Bool {
        try await Bounded.poll(timeout: timeout) { ending != nil }
    }

    /// Cancels the member's task. The iteration should then end with `CancellationError`.
    func cancel() {
        task.withLock { $0?.cancel() }
    }

    /// Cancels the member and waits up to `timeout` for its iteration to end, so what it
    /// prefetched is back with the group before the check goes on. Returns whether it ended.
    @discardableResult
    func stop(timeout: Duration = .seconds(2)) async throws -> Bool {
        cancel()
        return try await waitForEnd(timeout: timeout)
    }
}
