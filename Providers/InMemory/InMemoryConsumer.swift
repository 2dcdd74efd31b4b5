import AbstractBackend

extension InMemoryBackend {
    /// The messages of one or more keys, for one group. Each iterator is one member of the group.
    public struct Messages: AsyncSequence, Sendable {
        public typealias Element = MessageQueueMessage
        public typealias Failure = any Error

        let registry: KeyRegistry
        let group: ConsumerGroup
        /// `nil` reads every key except dead-letter keys.
        let keys: [MessageQueueKey]?

        public func makeAsyncIterator() -> Iterator {
            Iterator(consumer: InMemoryConsumer(registry: registry, group: group, keys: keys))
        }

        /// Delivers messages; throws `CancellationError` when its task is cancelled and
        /// ``MessageQueueError/Code/closed`` when the backend is closed.
        public struct Iterator: AsyncIteratorProtocol {
            @usableFromInline let consumer: InMemoryConsumer

            init(consumer: InMemoryConsumer) {
                self.consumer = consumer
            }

            // Inlinable so that most calls, served from the claimed batch, cost the caller no
            // async frame.
            @inlinable
            public mutating func next() async throws -> MessageQueueMessage? {
                if let message = try consumer.nextClaimed() { return message }
                return try await consumer.next()
            }

            @inlinable
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> MessageQueueMessage? {
                if let message = try consumer.nextClaimed() { return message }
                return try await consumer.next()
            }
        }
    }
}

/// One member of a group: claims batches of up to `prefetch` messages and hands them out one by one.
@usableFromInline
final class InMemoryConsumer {
    private let registry: KeyRegistry
    private let group: ConsumerGroup
    private let explicitKeys: [MessageQueueKey]?
    private let prefetch: Int
    private let signal = WakeSignal()
    private var subscriptions: [GroupMember] = []
    private var generation: Int?
    /// Where the next round of claims starts, so that no key starves the others.
    private var rotation = 0
    private var batch: [KeyLog.Delivery] = []
    private var handedOut = 0
    private var batchSource: GroupMember?
    private var claimScratch: [GroupState.Claim] = []
    private var isFinished = false
    private static let spinIterations = 200

    init(registry: KeyRegistry, group: ConsumerGroup, keys: [MessageQueueKey]?) {
        self.registry = registry
        self.group = group
        self.prefetch = registry.configuration.prefetch
        if let keys {
            var seen = Set<MessageQueueKey>()
            self.explicitKeys = keys.filter { seen.insert($0).inserted }
        } else {
            self.explicitKeys = nil
            registry.watch(signal)
        }
        batch.reserveCapacity(prefetch)
    }

    deinit {
        releaseBatch()
        for subscription in subscriptions { subscription.log.removeWaiter(signal) }
        if explicitKeys == nil { registry.unwatch(signal) }
    }

    /// The next message of the claimed batch, or `nil` when the batch is used up (or iteration ended).
    @usableFromInline
    func nextClaimed() throws -> MessageQueueMessage? {
        guard !isFinished, handedOut < batch.count, let source = batchSource else { return nil }
        guard !Task.isCancelled else { throw finish(CancellationError()) }
        defer { handedOut += 1 }
        return source.message(for: takeFromBatch(handedOut))
    }

    /// Moves delivery `index` out of the batch, so its payload changes hands without an extra
    /// retain and release.
    private func takeFromBatch(_ index: Int) -> KeyLog.Delivery {
        var delivery = KeyLog.Delivery.vacancy
        swap(&delivery, &batch[index])
        return delivery
    }

    /// The next message, claiming a new batch and waiting for one as needed. Runs on the caller's
    /// executor, so an iterator used from an actor never hops off it.
    @usableFromInline
    nonisolated(nonsending) func next() async throws -> MessageQueueMessage? {
        guard !isFinished else { return nil }
        if let message = try nextClaimed() { return message }
        do {
            return try await claimNextBatch()
        } catch {
            throw finish(error)
        }
    }

    /// Ends iteration: gives back what was claimed and not handed out, and returns `error` to throw.
    private func finish(_ error: any Error) -> any Error {
        isFinished = true
        releaseBatch()
        return error
    }

    private nonisolated(nonsending) func claimNextBatch() async throws -> MessageQueueMessage {
        while true {
            try Task.checkCancellation()
            // Reset before looking, so that a notification arriving while we look is kept.
            signal.reset()
            try refreshSubscriptions()
            var earliestDeadline: ContinuousClock.Instant?
            let count = subscriptions.count
            for offset in 0..<count {
                let subscription = subscriptions[(rotation + offset) % count]
                batch.removeAll(keepingCapacity: true)
                handedOut = 0
                let outcome = subscription.log.claim(
                    group: subscription.index, limit: prefetch, waiter: signal,
                    scratch: &claimScratch, into: &batch
                )
                switch outcome {
                case .claimed:
                    rotation = (rotation + offset + 1) % count
                    batchSource = subscription
                    handedOut = 1
                    return subscription.message(for: takeFromBatch(0))
                case .empty(let deadline):
                    if let deadline, earliestDeadline.map({ deadline < $0 }) ?? true { earliestDeadline = deadline }
                case .closed:
                    throw MessageQueueError.closed(InMemoryBackend.providerName)
                }
            }
            // A publisher is often mid-publish when a busy consumer runs dry: look again for a few
            // microseconds before suspending, which costs the publisher a thread wake-up.
            if signal.spinUntilNotified(iterations: Self.spinIterations) { continue }
            await signal.wait(until: earliestDeadline)
        }
    }

    /// Subscribes to the keys to read, creating this group on each key it meets for the first time.
    private func refreshSubscriptions() throws {
        if let explicitKeys {
            guard generation == nil else { return }
            guard !explicitKeys.isEmpty else {
                throw MessageQueueError(.invalidKey, "consume(keys:group:) was given no keys; pass at least one key, or call consume(group:) to read every key")
            }
            subscriptions = try explicitKeys.map { key in try subscribe(try registry.log(for: key)) }
            generation = 0
            return
        }
        let current = registry.generation
        guard current != generation else {
            if registry.isClosed { throw MessageQueueError.closed(InMemoryBackend.providerName) }
            return
        }
        let (logs, snapshotGeneration) = registry.consumableKeys()
        if registry.isClosed { throw MessageQueueError.closed(InMemoryBackend.providerName) }
        let known = Set(subscriptions.map { ObjectIdentifier($0.log) })
        for log in logs where !known.contains(ObjectIdentifier(log)) {
            subscriptions.append(try subscribe(log))
        }
        generation = snapshotGeneration
    }

    private func subscribe(_ log: KeyLog) throws -> GroupMember {
        guard let index = log.groupIndex(for: group) else {
            throw MessageQueueError.closed(InMemoryBackend.providerName)
        }
        return GroupMember(log: log, group: group, index: index)
    }

    private func releaseBatch() {
        guard let source = batchSource, handedOut < batch.count else { return }
        source.log.release(group: source.index, batch[handedOut...])
        batch.removeAll()
        handedOut = 0
    }
}
