import AbstractBackend
import Logging
import struct Foundation.Date

/// Everything one ``TemplateBackend`` holds: a log per key and, per key, how far each consumer
/// group has got.
///
/// An actor, so every operation below runs alone and works on plain values without locks. A
/// provider for a server keeps this shape and replaces the dictionaries with requests to the server.
actor TemplateLog {
    /// One published message.
    private struct Entry {
        let payload: MessageQueuePayload
        let publishedAt: Date
        /// The position in the publish order across every key, so consumers of several keys
        /// take the oldest message first and no key is starved.
        let order: UInt64
    }

    /// A message delivered to a group and not acknowledged yet.
    private struct Pending {
        /// Deliveries so far, the current one included.
        var deliveries: Int
        /// When the message may be delivered again: the visibility timeout after a delivery,
        /// or the `retryAfter` of a `nack`.
        var visibleAt: ContinuousClock.Instant
        /// Whether a consumer holds the current delivery; `false` after a `nack`, so a second
        /// `nack` of the same delivery changes nothing.
        var isHeld: Bool
        /// The reason given with the last `nack`, for the dead letter.
        var lastError: String?
    }

    /// One group's progress through one key.
    private struct GroupProgress {
        /// The next sequence number this group has never received.
        var cursor: UInt64
        var pending: [UInt64: Pending] = [:]

        /// The oldest sequence number this group still needs.
        var oldestNeeded: UInt64 { pending.keys.min().map { min($0, cursor) } ?? cursor }
    }

    /// One key: its retained messages and its groups.
    private struct KeyLog {
        /// Retained messages by sequence number, `oldest..<next`.
        var entries: [UInt64: Entry] = [:]
        var oldest: UInt64 = 0
        var next: UInt64 = 0
        var groups: [ConsumerGroup: GroupProgress] = [:]
    }

    private let configuration: TemplateBackend.Configuration
    private let logger: Logger
    private var logs: [MessageQueueKey: KeyLog] = [:]
    /// Keys in creation order, for consumers of every key.
    private var keys: [MessageQueueKey] = []
    /// Groups that have read every key: they exist on every key created later too, so another
    /// group's acknowledgements cannot trim a new key's messages before they read them.
    private var everyKeyGroups: Set<ConsumerGroup> = []
    private var publishCount: UInt64 = 0
    /// Consumers waiting for a change, resumed by ``wakeAll()`` or their own timer.
    private var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0
    private var isClosed = false
    /// The counters and timers every provider records, under the documented names.
    nonisolated let metrics = MessageQueueMetrics(provider: TemplateBackend.providerName)

    init(configuration: TemplateBackend.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    // MARK: Publishing

    /// Appends `items` in order and wakes the waiting consumers.
    func append(_ items: [(key: MessageQueueKey, payload: MessageQueuePayload)]) throws(MessageQueueError) {
        guard !isClosed else { throw MessageQueueError.closed(TemplateBackend.providerName) }
        for item in items { appendEntry(item.payload, to: item.key) }
        wakeAll()
    }

    private func appendEntry(_ payload: MessageQueuePayload, to key: MessageQueueKey) {
        createIfNeeded(key)
        let sequence = logs[key]!.next
        logs[key]!.entries[sequence] = Entry(payload: payload, publishedAt: Date(), order: publishCount)
        logs[key]!.next += 1
        publishCount += 1
    }

    /// Creates the log of `key` on first use, with the groups that read every key.
    private func createIfNeeded(_ key: MessageQueueKey) {
        guard logs[key] == nil else { return }
        var log = KeyLog()
        if !key.isDeadLetter {
            for group in everyKeyGroups { log.groups[group] = GroupProgress(cursor: 0) }
        }
        logs[key] = log
        keys.append(key)
    }

    // MARK: Consuming

    /// Creates `group` on the keys a member reads (every key except dead-letter keys when `keys`
    /// is `nil`), starting at the oldest retained message. From then on the group holds on to
    /// those keys' messages until it acknowledges them.
    private func join(keys wanted: [MessageQueueKey]?, group: ConsumerGroup) {
        if wanted == nil { everyKeyGroups.insert(group) }
        for key in wanted ?? keys.filter({ !$0.isDeadLetter }) {
            createIfNeeded(key)
            if logs[key]!.groups[group] == nil {
                logs[key]!.groups[group] = GroupProgress(cursor: logs[key]!.oldest)
            }
        }
    }

    /// The next message for a member of `group` reading `keys` (every key except dead-letter
    /// keys when `nil`), waiting as long as there is none.
    ///
    /// Throws `CancellationError` as soon as the calling task is cancelled, and
    /// ``MessageQueueError/Code/closed`` once the backend is closed.
    func nextMessage(keys wanted: [MessageQueueKey]?, group: ConsumerGroup) async throws -> MessageQueueMessage {
        if !isClosed { join(keys: wanted, group: group) }
        while true {
            try Task.checkCancellation()
            guard !isClosed else { throw MessageQueueError.closed(TemplateBackend.providerName) }
            let now = ContinuousClock.now
            let candidates = wanted ?? keys.filter { !$0.isDeadLetter }
            if let message = claim(from: candidates, group: group, now: now) { return message }
            await waitForChange(until: earliestVisibility(in: candidates, group: group))
        }
    }

    /// Delivers the oldest message available to `group` among `candidates`: per key a pending
    /// message whose time has come, else the next new one. A pending message that had its last
    /// allowed delivery goes to the dead-letter key instead.
    private func claim(from candidates: [MessageQueueKey], group: ConsumerGroup, now: ContinuousClock.Instant) -> MessageQueueMessage? {
        var best: (key: MessageQueueKey, sequence: UInt64, order: UInt64)?
        for key in candidates {
            deadLetterExhausted(key: key, group: group, now: now)
            guard let log = logs[key], let progress = log.groups[group] else { continue }
            let due = progress.pending.filter { $0.value.visibleAt <= now }.keys.min()
            let fresh = progress.cursor < log.next ? progress.cursor : nil
            guard let sequence = due ?? fresh, let entry = log.entries[sequence] else { continue }
            if best.map({ entry.order < $0.order }) ?? true {
                best = (key, sequence, entry.order)
            }
        }
        guard let (key, sequence, _) = best else { return nil }
        return deliver(sequence, of: key, to: group, now: now)
    }

    private func deliver(_ sequence: UInt64, of key: MessageQueueKey, to group: ConsumerGroup, now: ContinuousClock.Instant) -> MessageQueueMessage {
        let visibleAt = now + configuration.visibilityTimeout
        var progress = logs[key]!.groups[group]!
        if var pending = progress.pending[sequence] {
            pending.deliveries += 1
            pending.visibleAt = visibleAt
            pending.isHeld = true
            progress.pending[sequence] = pending
        } else {
            progress.pending[sequence] = Pending(deliveries: 1, visibleAt: visibleAt, isHeld: true)
            progress.cursor = sequence + 1
        }
        logs[key]!.groups[group] = progress
        let entry = logs[key]!.entries[sequence]!
        let deliveries = progress.pending[sequence]!.deliveries
        metrics.delivery(of: key, in: group).delivered(deliveryCount: deliveries)
        if deliveries >= configuration.maxDeliveries {
            // When the last allowed delivery times out, nobody may be reading this key to notice:
            // dead-letter it then all the same.
            Task { [weak self] in
                try? await Task.sleep(until: visibleAt, clock: .continuous)
                await self?.deadLetterExhausted(key: key, group: group, now: .now)
            }
        }
        return MessageQueueMessage(
            key: key,
            group: group,
            payload: entry.payload,
            id: String(sequence),
            publishedAt: entry.publishedAt,
            deliveryCount: deliveries,
            receipt: DeliveryReceipt(primary: sequence, secondary: UInt64(deliveries)),
            acknowledger: self
        )
    }

    /// Dead-letters every message of `group` on `key` whose last allowed delivery timed out.
    private func deadLetterExhausted(key: MessageQueueKey, group: ConsumerGroup, now: ContinuousClock.Instant) {
        guard !isClosed, let pending = logs[key]?.groups[group]?.pending else { return }
        let exhausted = pending.filter { $0.value.visibleAt <= now && $0.value.deliveries >= configuration.maxDeliveries }
        for sequence in exhausted.keys.sorted() {
            deadLetter(sequence, of: key, group: group)
        }
    }

    /// When a pending message of `group` among `candidates` next becomes deliverable, if any.
    private func earliestVisibility(in candidates: [MessageQueueKey], group: ConsumerGroup) -> ContinuousClock.Instant? {
        candidates.compactMap { logs[$0]?.groups[group]?.pending.values.map(\.visibleAt).min() }.min()
    }

    /// Suspends until ``wakeAll()``, `deadline`, or the cancellation of the calling task.
    private func waitForChange(until deadline: ContinuousClock.Instant?) async {
        let id = nextWaiter
        nextWaiter += 1
        // Wakes the waiter when a pending message becomes deliverable; harmless once it woke.
        let timer = deadline.map { deadline in
            Task { [weak self] in
                try? await Task.sleep(until: deadline, clock: .continuous)
                await self?.wake(id)
            }
        }
        await withTaskCancellationHandler {
            // Runs on this actor before it suspends, so a cancellation that arrives earlier still
            // finds the continuation: its wake-up has to wait for the actor.
            await withCheckedContinuation { waiters[id] = $0 }
        } onCancel: {
            Task { await self.wake(id) }
        }
        timer?.cancel()
    }

    private func wake(_ id: UInt64) {
        waiters.removeValue(forKey: id)?.resume()
    }

    private func wakeAll() {
        let waiting = waiters
        waiters = [:]
        for waiter in waiting.values { waiter.resume() }
    }

    // MARK: Outcomes

    /// Acknowledges `sequence` in `group`; does nothing when it is no longer pending.
    func acknowledge(_ sequence: UInt64, of key: MessageQueueKey, in group: ConsumerGroup) throws(MessageQueueError) {
        guard !isClosed else { throw MessageQueueError.closed(TemplateBackend.providerName) }
        guard logs[key]?.groups[group]?.pending.removeValue(forKey: sequence) != nil else { return }
        metrics.delivery(of: key, in: group).acknowledged()
        trim(key)
    }

    /// Gives delivery number `deliveries` of `sequence` back to `group` for redelivery after
    /// `retryAfter`, or dead-letters it when that was its last allowed delivery. Does nothing
    /// when that delivery is no longer the current one.
    func reject(
        _ sequence: UInt64,
        deliveries: Int,
        of key: MessageQueueKey,
        in group: ConsumerGroup,
        retryAfter: Duration,
        reason: String?
    ) throws(MessageQueueError) {
        guard !isClosed else { throw MessageQueueError.closed(TemplateBackend.providerName) }
        guard var pending = logs[key]?.groups[group]?.pending[sequence], pending.isHeld, pending.deliveries == deliveries else {
            return
        }
        metrics.delivery(of: key, in: group).rejected()
        pending.lastError = reason ?? pending.lastError
        pending.isHeld = false
        pending.visibleAt = ContinuousClock.now + max(retryAfter, .zero)
        logs[key]!.groups[group]!.pending[sequence] = pending
        if pending.deliveries >= configuration.maxDeliveries {
            deadLetter(sequence, of: key, group: group)
        }
        // A waiting consumer may now take it, or must wait for a new, earlier deadline.
        wakeAll()
    }

    /// Moves `sequence` of `group` to `<key>:dead-letter` as a ``DeadLetter`` envelope and
    /// acknowledges it in the group.
    private func deadLetter(_ sequence: UInt64, of key: MessageQueueKey, group: ConsumerGroup) {
        guard let pending = logs[key]?.groups[group]?.pending.removeValue(forKey: sequence),
              let entry = logs[key]?.entries[sequence] else { return }
        let letter = DeadLetter(
            key: key,
            group: group,
            id: String(sequence),
            deliveryCount: pending.deliveries,
            reason: .maxDeliveries,
            lastError: pending.lastError,
            publishedAt: entry.publishedAt,
            payload: entry.payload
        )
        appendEntry(letter.envelope, to: key.deadLetterKey)
        metrics.delivery(of: key, in: group).deadLettered()
        logger.warning(
            "message moved to the dead-letter key",
            metadata: [
                "key": "\(key)", "group": "\(group)", "message-id": "\(sequence)",
                "delivery-count": "\(pending.deliveries)", "dead-letter-key": "\(key.deadLetterKey)",
            ]
        )
        trim(key)
        wakeAll()
    }

    /// Drops the messages of `key` that every group has acknowledged. A key nobody has read yet
    /// keeps everything, so a group that comes later still gets it.
    private func trim(_ key: MessageQueueKey) {
        guard let log = logs[key], let floor = log.groups.values.map(\.oldestNeeded).min(), floor > log.oldest else { return }
        for sequence in log.oldest..<floor { logs[key]!.entries[sequence] = nil }
        logs[key]!.oldest = floor
    }

    // MARK: Closing

    /// Drops every message and ends every waiting consumer; later calls throw `closed`.
    func close() {
        isClosed = true
        logs = [:]
        keys = []
        everyKeyGroups = []
        wakeAll()
    }
}

extension TemplateLog: MessageAcknowledger {
    nonisolated(nonsending) func acknowledge(_ message: MessageQueueMessage) async throws {
        try await acknowledge(message.receipt.primary, of: message.key, in: message.group)
    }

    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        try await reject(
            message.receipt.primary, deliveries: Int(message.receipt.secondary), of: message.key, in: message.group,
            retryAfter: retryAfter, reason: reason
        )
    }
}
