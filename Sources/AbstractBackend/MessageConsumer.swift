import CoreMetrics
import Logging
import ServiceLifecycle
import Synchronization

/// Runs a handler over the messages of a consumer group: the part of an application that consumes
/// all day.
///
/// ```swift
/// let consumer = try MessageConsumer(backend: backend, group: ConsumerGroup("billing"), concurrency: 8) { message in
///     let order = try message.payload.decode(as: Order.self)
///     try await charge(order)
/// }
/// let services = ServiceGroup(services: [consumer], gracefulShutdownSignals: [.sigterm], logger: logger)
/// try await services.run()
/// ```
///
/// - A handler that returns acknowledges its message. A handler that throws gets the message
///   delivered again after the ``RetryPolicy``'s delay (or the delay of a thrown ``RetryAfter``),
///   with the error recorded; after the provider's `maxDeliveries` the provider moves the message to
///   `<key>:dead-letter` with that last error. A failing or slow handler never stops the loop.
/// - At most `concurrency` handlers run at once, and the consumer pulls the next message only when
///   one of them is free.
/// - Graceful shutdown (service-lifecycle's, ``shutdown()``, or cancelling the task running
///   ``run()``) stops pulling, lets running handlers finish for up to `shutdownTimeout`, then
///   cancels them. Messages not acknowledged by then stay pending and are delivered again to
///   another member of the group: never acknowledged without being handled, never lost.
/// - A provider outage (``MessageQueueError/Code/unavailable`` or ``MessageQueueError/Code/timeout``
///   from the message sequence) is logged and consumption resumes with backoff; any other error
///   ends ``run()`` with that error once the handlers have finished.
///
/// A consumer runs once: a second ``run()`` throws ``MessageQueueError/Code/invalidState``.
public final class MessageConsumer: Service, Sendable {
    /// Processes one message. Return to acknowledge it; throw to have it retried.
    public typealias Handler = @Sendable (MessageQueueMessage) async throws -> Void

    /// The most handlers that run at once.
    public let concurrency: Int
    /// The delays between retries of a failed message.
    public let retryPolicy: RetryPolicy
    /// How long shutdown waits for running handlers before cancelling them.
    public let shutdownTimeout: Duration

    private let backend: any MessageQueueBackend
    private let group: ConsumerGroup?
    private let keys: [MessageQueueKey]?
    private let logger: Logger
    private let handler: Handler
    private let state: Mutex<State>
    private let timers: HandlerTimers

    /// Creates a consumer; nothing is consumed until ``run()``.
    ///
    /// - Parameters:
    ///   - backend: The provider to consume from. The consumer does not close it.
    ///   - group: The group to join; `nil` joins the provider's default group.
    ///   - keys: The keys to consume; `nil` consumes every key, including keys created later.
    ///   - concurrency: The most handlers that run at once; at least 1.
    ///   - retryPolicy: The delays between retries of a failed message.
    ///   - shutdownTimeout: How long shutdown waits for running handlers before cancelling them.
    ///   - logger: Where the consumer logs; messages carry `key`, `group`, `message-id` and
    ///     `delivery-count` metadata, never payloads.
    ///   - handler: Processes one message; see ``Handler``.
    /// - Throws: ``MessageQueueError/Code/invalidConfiguration`` when `concurrency` is below 1, or
    ///   `shutdownTimeout` or `keys` is empty or negative.
    public init(
        backend: any MessageQueueBackend,
        group: ConsumerGroup? = nil,
        keys: [MessageQueueKey]? = nil,
        concurrency: Int = 1,
        retryPolicy: RetryPolicy = .default,
        shutdownTimeout: Duration = .seconds(30),
        logger: Logger = Logger(label: "abe.consumer"),
        handler: @escaping Handler
    ) throws {
        guard concurrency >= 1 else {
            throw MessageQueueError(.invalidConfiguration, "MessageConsumer concurrency is \(concurrency); use 1 or more handlers at once")
        }
        guard shutdownTimeout >= .zero else {
            throw MessageQueueError(.invalidConfiguration, "MessageConsumer shutdownTimeout is negative; use zero or more")
        }
        if let keys, keys.isEmpty {
            throw MessageQueueError(.invalidConfiguration, "MessageConsumer keys is empty; pass nil to consume every key, or at least one key")
        }
        self.backend = backend
        self.group = group
        self.keys = keys
        self.concurrency = concurrency
        self.retryPolicy = retryPolicy
        self.shutdownTimeout = shutdownTimeout
        var logger = logger
        logger[metadataKey: "provider"] = "\(type(of: backend).providerName)"
        if let group { logger[metadataKey: "group"] = "\(group)" }
        self.logger = logger
        self.handler = handler
        self.state = Mutex(State(freeSlots: concurrency))
        self.timers = HandlerTimers(provider: type(of: backend).providerName)
    }

    /// Consumes until shutdown, then returns once every handler has finished or been cancelled.
    ///
    /// Returns at once, consuming nothing, when ``shutdown()`` was called before.
    ///
    /// - Throws: ``MessageQueueError/Code/invalidState`` when the consumer was already run, and the
    ///   error that ended consumption when it was not a provider outage, such as
    ///   ``MessageQueueError/Code/closed`` when the backend was closed.
    public func run() async throws {
        let shouldStart = try state.withLock { state -> Bool in
            guard case .idle = state.phase else {
                throw MessageQueueError(.invalidState, "MessageConsumer.run() was already called; a consumer runs once, so create another one to run again")
            }
            state.phase = .running
            return !state.shutdownRequested
        }
        guard shouldStart else { return }
        logger.info("consumer started", metadata: ["concurrency": "\(concurrency)"])
        // Unstructured on purpose: shutdown must stop the pulling without cancelling the running
        // handlers, and cancelling run()'s task would cancel structured children at once.
        let main = Task { await self.consumeThenDrain() }
        let failure = await withGracefulShutdownHandler {
            await withTaskCancellationHandler {
                await main.value
            } onCancel: {
                self.shutdown()
            }
        } onGracefulShutdown: {
            self.shutdown()
        }
        if let failure {
            logger.error("consumer stopped by an error", metadata: ["error": "\(failure)"])
            throw failure
        }
        logger.info("consumer stopped")
    }

    /// Starts a graceful shutdown: no more messages are pulled, running handlers get
    /// `shutdownTimeout` to finish. Returns at once; ``run()`` returns when shutdown is complete.
    /// Calling it again, or before ``run()``, is harmless.
    public func shutdown() {
        let puller = state.withLock { state -> Task<(any Error)?, Never>? in
            guard !state.shutdownRequested else { return nil }
            state.shutdownRequested = true
            return state.puller
        }
        // Cancelled outside the lock: cancellation handlers run synchronously and take it.
        puller?.cancel()
    }

    // MARK: - Pulling

    private func consumeThenDrain() async -> (any Error)? {
        let puller = Task { await self.pullWithRetries() }
        let cancelNow = state.withLock { state -> Bool in
            state.puller = puller
            return state.shutdownRequested
        }
        if cancelNow { puller.cancel() }
        let failure = await puller.value
        await drain()
        state.withLock { $0.phase = .finished }
        return failure
    }

    /// Pulls until cancelled or the sequence ends; a provider outage restarts the sequence after
    /// a growing pause. Returns the error that ended consumption, if it was not cancellation.
    private func pullWithRetries() async -> (any Error)? {
        var pause = Duration.milliseconds(100)
        while !Task.isCancelled {
            do {
                try await pull(from: backend, resettingPause: &pause)
                return nil
            } catch {
                if Task.isCancelled { return nil }
                guard let queueError = error as? MessageQueueError,
                    queueError.code == .unavailable || queueError.code == .timeout
                else { return error }
                logger.warning(
                    "consuming failed; retrying",
                    metadata: ["error": "\(queueError)", "retry-in": "\(pause.formatted)"]
                )
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(5))
            }
        }
        return nil
    }

    private func pull<Backend: MessageQueueBackend>(from backend: Backend, resettingPause pause: inout Duration) async throws {
        let messages = keys.map { backend.consume(keys: $0, group: group) } ?? backend.consume(group: group)
        var iterator = messages.makeAsyncIterator()
        while await acquireSlot() {
            let message: MessageQueueMessage?
            do {
                message = try await iterator.next()
            } catch {
                releaseSlot()
                throw error
            }
            guard let message else {
                releaseSlot()
                return
            }
            pause = .milliseconds(100)
            startHandler(for: message)
        }
    }

    // MARK: - Handlers

    private func startHandler(for message: MessageQueueMessage) {
        state.withLock { state in
            let id = state.nextHandlerID
            state.nextHandlerID += 1
            // Created under the lock so that the handler's own removal cannot come first.
            state.running[id] = Task {
                await self.handle(message)
                self.handlerFinished(id)
            }
        }
    }

    private func handle(_ message: MessageQueueMessage) async {
        var logger = self.logger
        logger[metadataKey: "key"] = "\(message.key)"
        logger[metadataKey: "group"] = "\(message.group)"
        logger[metadataKey: "message-id"] = "\(message.id)"
        logger[metadataKey: "delivery-count"] = "\(message.deliveryCount)"
        let started = ContinuousClock.now
        do {
            try await handler(message)
            timers.record(.success, for: message, since: started)
        } catch {
            timers.record(.failure, for: message, since: started)
            await retry(message, after: error, logger: logger)
            return
        }
        do {
            try await message.ack()
        } catch {
            logger.warning(
                "handled, but the acknowledgement failed; the message will be delivered again",
                metadata: ["error": "\(error)"]
            )
        }
    }

    private func retry(_ message: MessageQueueMessage, after error: any Error, logger: Logger) async {
        if Task.isCancelled {
            logger.notice("handler cancelled at shutdown; the message stays pending and is delivered again")
            return
        }
        let delay: Duration
        let reason: String
        if let retry = error as? RetryAfter {
            (delay, reason) = (retry.delay, retry.reason)
        } else {
            (delay, reason) = (retryPolicy.delay(afterDelivery: message.deliveryCount), String(describing: error))
        }
        logger.warning("handler failed; the message is handed back for a retry, or the dead letter after the last allowed delivery", metadata: ["error": "\(reason)", "retry-in": "\(delay.formatted)"])
        do {
            try await message.nack(retryAfter: delay, reason: reason)
        } catch {
            logger.warning(
                "could not return the message for retry; it is delivered again after the visibility timeout",
                metadata: ["error": "\(error)"]
            )
        }
    }

    private func handlerFinished(_ id: UInt64) {
        let (slotWaiter, idleWaiter) = state.withLock { state in
            state.running[id] = nil
            state.freeSlots += 1
            return (state.takeSlotWaiter(), state.running.isEmpty ? state.takeIdleWaiter() : nil)
        }
        slotWaiter?.resume(returning: true)
        idleWaiter?.resume()
    }

    // MARK: - Slots

    /// Waits for a free handler slot and takes it. Returns `false` when the task is cancelled.
    private func acquireSlot() async -> Bool {
        let taken = state.withLock { state -> Bool in
            guard state.freeSlots > 0 else { return false }
            state.freeSlots -= 1
            return true
        }
        if taken { return true }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let immediate = state.withLock { state -> Bool? in
                    if Task.isCancelled { return false }
                    if state.freeSlots > 0 {
                        state.freeSlots -= 1
                        return true
                    }
                    state.slotWaiter = continuation
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            state.withLock { $0.slotWaiter.take() }?.resume(returning: false)
        }
    }

    private func releaseSlot() {
        state.withLock { $0.freeSlots += 1 }
    }

    // MARK: - Shutdown

    /// Waits up to `shutdownTimeout` for running handlers, cancels the rest, and waits for them.
    private func drain() async {
        let stillRunning = state.withLock { $0.running.count }
        guard stillRunning > 0 else { return }
        logger.info("waiting for running handlers", metadata: ["handlers": "\(stillRunning)", "timeout": "\(shutdownTimeout.formatted)"])
        let finishedInTime = await withTaskGroup(of: Bool.self) { group in
            group.addTask { await self.waitUntilIdle() }
            group.addTask { [shutdownTimeout] in
                try? await Task.sleep(for: shutdownTimeout)
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first
        }
        guard !finishedInTime else { return }
        let remaining = state.withLock { Array($0.running.values) }
        logger.warning(
            "handlers still running after the shutdown timeout are cancelled; their messages stay pending",
            metadata: ["handlers": "\(remaining.count)"]
        )
        for task in remaining { task.cancel() }
        for task in remaining { await task.value }
    }

    /// Returns `true` once no handler runs, `false` when cancelled first.
    private func waitUntilIdle() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let idleNow = state.withLock { state -> Bool in
                    if state.running.isEmpty || Task.isCancelled { return true }
                    state.idleWaiter = continuation
                    return false
                }
                if idleNow { continuation.resume() }
            }
            return state.withLock { $0.running.isEmpty }
        } onCancel: {
            state.withLock { $0.idleWaiter.take() }?.resume()
        }
    }
}

extension MessageConsumer {
    private enum Phase {
        case idle
        case running
        case finished
    }

    private struct State: ~Copyable {
        var phase = Phase.idle
        var shutdownRequested = false
        var puller: Task<(any Error)?, Never>?
        var running: [UInt64: Task<Void, Never>] = [:]
        var nextHandlerID: UInt64 = 0
        var freeSlots: Int
        var slotWaiter: CheckedContinuation<Bool, Never>?
        var idleWaiter: CheckedContinuation<Void, Never>?

        init(freeSlots: Int) {
            self.freeSlots = freeSlots
        }

        /// Hands a free slot to the waiting puller, if there is one.
        mutating func takeSlotWaiter() -> CheckedContinuation<Bool, Never>? {
            guard freeSlots > 0, let waiter = slotWaiter.take() else { return nil }
            freeSlots -= 1
            return waiter
        }

        mutating func takeIdleWaiter() -> CheckedContinuation<Void, Never>? {
            idleWaiter.take()
        }
    }
}

/// The `abe_handler_duration` timers, one per key, group and outcome, made on first use.
private final class HandlerTimers: Sendable {
    enum Outcome: String {
        case success
        case failure
    }

    private struct Dimension: Hashable {
        var key: String
        var group: String
        var outcome: String
    }

    private let provider: String
    private let timers = Mutex<[Dimension: Timer]>([:])

    init(provider: String) {
        self.provider = provider
    }

    func record(_ outcome: Outcome, for message: MessageQueueMessage, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let dimension = Dimension(key: message.key.rawValue, group: message.group.name, outcome: outcome.rawValue)
        let timer = timers.withLock { timers in
            if let timer = timers[dimension] { return timer }
            let timer = Timer(
                label: "abe_handler_duration",
                dimensions: [("provider", provider), ("key", dimension.key), ("group", dimension.group), ("outcome", dimension.outcome)]
            )
            timers[dimension] = timer
            return timer
        }
        timer.recordNanoseconds(elapsed.wholeNanoseconds)
    }
}
