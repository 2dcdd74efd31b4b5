import AbstractBackend
import Synchronization

import struct Foundation.Date

/// One key's log, its groups and everyone waiting on it.
///
/// Two locks keep publishers and consumers out of each other's way: `log` guards the entries and
/// is what publishers take; `groups` guards delivery state and is what acknowledgements take.
/// A consumer claiming a batch takes `groups`, then `log` — never the other way round.
/// Publishers learn what they may drop from `trimBound` (everything below it is acknowledged by
/// every group) without taking the groups lock.
/// Continuations are resumed and dead letters written only after the locks are released.
///
/// The two sides also stay on separate cache lines (see `CacheLinePadding`): on two cores, a line
/// written by both the publishing and the consuming thread for every message costs more than all
/// the bookkeeping here.
final class KeyLog: Sendable {
    struct Entry {
        let payload: MessageQueuePayload
        let publishedAt: Date

        /// Fills a slot whose entry was removed, releasing its payload.
        static let vacancy = Entry(payload: MessageQueuePayload(), publishedAt: Date(timeIntervalSince1970: 0))
    }

    /// A claimed message, as handed to a consumer.
    struct Delivery {
        let sequence: UInt64
        let deliveries: Int
        let entry: Entry

        /// Fills a batch slot whose delivery was handed out.
        static let vacancy = Delivery(sequence: 0, deliveries: 0, entry: Entry.vacancy)
    }

    private struct Waiter {
        let signal: WakeSignal
        let group: Int
    }

    private typealias Publisher = UnsafeContinuation<Void, any Error>

    private struct LogState {
        var entries = Queue(vacancy: Entry.vacancy)
        /// The sequence number of `entries.first`.
        var firstSequence: UInt64 = 1
        /// Consumers waiting for a new entry.
        var waiters: [ObjectIdentifier: WakeSignal] = [:]
        var publishers: [(id: UInt64, continuation: Publisher)] = []
        var nextPublisherID: UInt64 = 0
        var isClosed = false

        var endSequence: UInt64 { firstSequence + UInt64(entries.count) }

        mutating func trim(below bound: UInt64) {
            guard bound > firstSequence else { return }
            entries.removeFirst(Int(bound - firstSequence))
            firstSequence = bound
        }

        func entry(_ sequence: UInt64) -> Entry {
            entries[Int(sequence - firstSequence)]
        }

        mutating func takeWaiters() -> [WakeSignal] {
            guard !waiters.isEmpty else { return [] }
            defer { waiters.removeAll() }
            return Array(waiters.values)
        }
    }

    private struct GroupsState {
        var groups: [GroupState] = []
        var indices: [ConsumerGroup: Int] = [:]
        /// Consumers waiting for a redelivery or a deadline change in their group.
        var waiters: [ObjectIdentifier: Waiter] = [:]
        /// The value last stored in `trimBound`.
        var publishedBound: UInt64 = 0
        var isClosed = false

        var lowestFloor: UInt64 {
            // Indices, not elements: iterating would copy each group's buffers.
            guard !groups.isEmpty else { return 0 }
            var lowest = groups[0].floor
            for index in groups.indices where groups[index].floor < lowest { lowest = groups[index].floor }
            return lowest
        }

        mutating func takeWaiters(group: Int, except excluded: ObjectIdentifier? = nil) -> [WakeSignal] {
            guard !waiters.isEmpty else { return [] }
            var woken: [WakeSignal] = []
            for (id, waiter) in waiters where id != excluded && waiter.group == group {
                woken.append(waiter.signal)
                waiters[id] = nil
            }
            return woken
        }
    }

    let key: MessageQueueKey
    let publishing: MessageQueueMetrics.Publishing
    private let metrics: MessageQueueMetrics
    private let settings: InMemoryBackend.Configuration
    /// Below this many entries, suspended publishers are resumed; the gap avoids waking them for
    /// every single acknowledgement.
    private let lowWater: Int
    private weak let registry: KeyRegistry?
    private let padding0 = CacheLinePadding()
    private let log = Mutex(LogState())
    private let padding1 = CacheLinePadding()
    private let groups = Mutex(GroupsState())
    private let padding2 = CacheLinePadding()
    /// Entries below this are acknowledged by every group and may be dropped; 0 while no group exists.
    /// Acknowledgements raise it in steps of `trimStep`, so the publisher's cache line is not
    /// pulled over for every single one.
    private let trimBound = Atomic<UInt64>(0)
    /// Set while a publisher waits for room; an acknowledgement that raises `trimBound` then trims.
    private let publishersWaiting = Atomic<Bool>(false)
    private let padding3 = CacheLinePadding()
    private static let trimStep: UInt64 = 32

    init(key: MessageQueueKey, settings: InMemoryBackend.Configuration, registry: KeyRegistry) {
        self.key = key
        self.metrics = registry.metrics
        self.publishing = registry.metrics.publishing(to: key)
        self.settings = settings
        self.lowWater = settings.capacity - max(1, settings.capacity / 8)
        self.registry = registry
    }

    // MARK: Publishing

    /// Appends `payloads` in order, suspending while the log is full.
    nonisolated(nonsending) func append<Payloads: Collection<MessageQueuePayload>>(_ payloads: Payloads) async throws where Payloads.Index == Int {
        var next = payloads.startIndex
        while true {
            next = try appendAvailable(payloads, from: next, bypassCapacity: false)
            if next == payloads.endIndex { return }
            try await waitForRoom()
        }
    }

    /// Appends dead letters without waiting: they must never wait on the consumers that failed them.
    func appendDeadLetters(_ payloads: [MessageQueuePayload]) throws {
        _ = try appendAvailable(payloads, from: payloads.startIndex, bypassCapacity: true)
    }

    /// Appends what fits of `payloads[start...]`; returns the index of the first one left over.
    private func appendAvailable<Payloads: Collection<MessageQueuePayload>>(
        _ payloads: Payloads,
        from start: Int,
        bypassCapacity: Bool
    ) throws -> Int where Payloads.Index == Int {
        let publishedAt = Date()
        let (isClosed, next, woken) = log.withLock { log -> (Bool, Int, [WakeSignal]) in
            guard !log.isClosed else { return (true, start, []) }
            log.trim(below: trimBound.load(ordering: .acquiring))
            var index = start
            while index != payloads.endIndex, bypassCapacity || log.entries.count < settings.capacity {
                log.entries.append(Entry(payload: payloads[index], publishedAt: publishedAt))
                index += 1
            }
            return (false, index, index == start ? [] : log.takeWaiters())
        }
        if isClosed { throw MessageQueueError.closed(InMemoryBackend.providerName) }
        for signal in woken { signal.notify() }
        return next
    }

    private nonisolated(nonsending) func waitForRoom() async throws {
        let id = log.withLock { log in
            log.nextPublisherID += 1
            return log.nextPublisherID
        }
        try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: Publisher) in
                let outcome = log.withLock { log -> Result<Void, any Error>? in
                    if log.isClosed { return .failure(MessageQueueError.closed(InMemoryBackend.providerName)) }
                    if Task.isCancelled { return .failure(CancellationError()) }
                    log.trim(below: trimBound.load(ordering: .acquiring))
                    if log.entries.count < settings.capacity { return .success(()) }
                    log.publishers.append((id, continuation))
                    publishersWaiting.store(true, ordering: .sequentiallyConsistent)
                    return nil
                }
                if let outcome {
                    continuation.resume(with: outcome)
                    return
                }
                // Acknowledgements publish the trim bound lazily, so it may lag the groups. Settle it
                // now: any acknowledgement from here on sees `publishersWaiting` and wakes us.
                let woken = groups.withLock { groups in raiseTrimBound(&groups, force: true) }
                for publisher in woken { publisher.resume() }
            }
        } onCancel: {
            let cancelled = log.withLock { log -> Publisher? in
                guard let index = log.publishers.firstIndex(where: { $0.id == id }) else { return nil }
                return log.publishers.remove(at: index).continuation
            }
            cancelled?.resume(throwing: CancellationError())
        }
    }

    /// Publishes the groups' lowest floor as `trimBound` when it moved by `trimStep`, when
    /// `force` is set, or when a publisher waits; wakes suspended publishers when that made enough
    /// room. Call with the groups lock held.
    private func raiseTrimBound(_ groups: inout GroupsState, force: Bool) -> [Publisher] {
        let lowest = groups.lowestFloor
        guard lowest != groups.publishedBound else { return [] }
        guard force || lowest >= groups.publishedBound + Self.trimStep || publishersWaiting.load(ordering: .relaxed) else {
            return []
        }
        groups.publishedBound = lowest
        trimBound.store(lowest, ordering: .sequentiallyConsistent)
        guard publishersWaiting.load(ordering: .sequentiallyConsistent) else { return [] }
        return log.withLock { log -> [Publisher] in
            log.trim(below: lowest)
            guard !log.publishers.isEmpty, log.entries.count <= lowWater else { return [] }
            publishersWaiting.store(false, ordering: .relaxed)
            defer { log.publishers.removeAll() }
            return log.publishers.map(\.continuation)
        }
    }

    /// Runs `body` with the groups and the retained range of the log, under both locks (groups,
    /// then log: the documented order), so statistics see one consistent state.
    func inspect<Result>(_ body: (_ groups: [GroupState], _ retained: Range<UInt64>, _ publishedAt: (UInt64) -> Date) -> Result) -> Result {
        groups.withLock { groups in
            log.withLock { log in body(groups.groups, log.firstSequence..<log.endSequence) { log.entry($0).publishedAt } }
        }
    }

    // MARK: Consuming

    /// The index of `group` in this key, creating the group at the oldest retained message.
    /// `nil` once closed.
    func groupIndex(for group: ConsumerGroup) -> Int? {
        groups.withLock { groups in
            guard !groups.isClosed else { return nil }
            if let index = groups.indices[group] { return index }
            // Read the start and lower the bound under the log lock, so no trim can slip between.
            log.withLock { log in
                groups.groups.append(GroupState(group: group, start: log.firstSequence, metrics: metrics.delivery(of: key, in: group)))
                groups.publishedBound = groups.lowestFloor
                trimBound.store(groups.publishedBound, ordering: .sequentiallyConsistent)
            }
            groups.indices[group] = groups.groups.count - 1
            return groups.groups.count - 1
        }
    }

    /// The delivery metrics of the group at `index`.
    func deliveryMetrics(group index: Int) -> MessageQueueMetrics.Delivery {
        groups.withLock { $0.groups[index].metrics }
    }

    enum ClaimOutcome {
        case claimed
        /// Nothing to deliver; `waiter` will be notified when that changes.
        case empty(earliestDeadline: ContinuousClock.Instant?)
        case closed
    }

    /// Claims up to `limit` deliveries for `group` into `deliveries`, or registers `waiter`.
    func claim(
        group: Int,
        limit: Int,
        waiter: WakeSignal,
        scratch claims: inout [GroupState.Claim],
        into deliveries: inout [Delivery]
    ) -> ClaimOutcome {
        let now = ContinuousClock.now
        let waiterID = ObjectIdentifier(waiter)
        var exhausted: [(GroupState.Exhausted, Entry)] = []
        claims.removeAll(keepingCapacity: true)
        let (outcome, woken, publishers) = groups.withLock { groups -> (ClaimOutcome, [WakeSignal], [Publisher]) in
            guard !groups.isClosed else { return (.closed, [], []) }
            var expired: [GroupState.Exhausted] = []
            groups.groups[group].expire(now: now, maxDeliveries: settings.maxDeliveries, exhausted: &expired)
            log.withLock { log in
                groups.groups[group].claim(
                    limit: limit, end: log.endSequence, now: now,
                    visibilityTimeout: settings.visibilityTimeout, into: &claims
                )
                for item in expired { exhausted.append((item, log.entry(item.sequence))) }
                for claim in claims {
                    deliveries.append(Delivery(sequence: claim.sequence, deliveries: claim.deliveries, entry: log.entry(claim.sequence)))
                }
                // Registered under the log lock, so a later publish sees the waiter.
                if claims.isEmpty { log.waiters[waiterID] = waiter }
            }
            let publishers = raiseTrimBound(&groups, force: true)
            guard !claims.isEmpty else {
                groups.waiters[waiterID] = Waiter(signal: waiter, group: group)
                return (.empty(earliestDeadline: groups.groups[group].earliestDeadline), [], publishers)
            }
            // Idle members of the group must learn the new deadline, and may take what is left.
            return (.claimed, groups.takeWaiters(group: group, except: waiterID), publishers)
        }
        finish(woken: woken, publishers: publishers, exhausted: exhausted, group: group)
        return outcome
    }

    /// Gives back deliveries that were claimed but never handed to the application.
    func release(group: Int, _ deliveries: some BidirectionalCollection<Delivery>) {
        guard !deliveries.isEmpty else { return }
        let woken = groups.withLock { groups -> [WakeSignal] in
            guard !groups.isClosed else { return [] }
            groups.groups[group].release(deliveries.lazy.map { GroupState.Claim(sequence: $0.sequence, deliveries: $0.deliveries) })
            return groups.takeWaiters(group: group)
        }
        for signal in woken { signal.notify() }
    }

    func removeWaiter(_ waiter: WakeSignal) {
        let id = ObjectIdentifier(waiter)
        groups.withLock { $0.waiters[id] = nil }
        log.withLock { $0.waiters[id] = nil }
    }

    // MARK: Outcomes

    func acknowledge(group: Int, sequence: UInt64) throws(MessageQueueError) {
        let (isClosed, publishers) = groups.withLock { groups -> (Bool, [Publisher]) in
            guard !groups.isClosed else { return (true, []) }
            guard groups.groups[group].ack(sequence) else { return (false, []) }
            // The common case, cheaply: too little progress to publish, and nobody waiting.
            if groups.groups[group].floor < groups.publishedBound + Self.trimStep,
               !publishersWaiting.load(ordering: .relaxed) {
                return (false, [])
            }
            return (false, raiseTrimBound(&groups, force: false))
        }
        if isClosed { throw MessageQueueError.closed(InMemoryBackend.providerName) }
        for publisher in publishers { publisher.resume() }
    }

    func reject(
        group: Int,
        sequence: UInt64,
        deliveries: Int,
        retryAfter: Duration,
        reason: String?
    ) throws(MessageQueueError) {
        let now = ContinuousClock.now
        var exhausted: [(GroupState.Exhausted, Entry)] = []
        let (isClosed, woken, publishers) = groups.withLock { groups -> (Bool, [WakeSignal], [Publisher]) in
            guard !groups.isClosed else { return (true, [], []) }
            let outcome = groups.groups[group].reject(
                sequence, deliveries: deliveries, retryAfter: retryAfter, reason: reason,
                now: now, maxDeliveries: settings.maxDeliveries
            )
            switch outcome {
            case .stale:
                return (false, [], [])
            case .retry:
                // Waiting members recompute their deadline, or take the message now.
                return (false, groups.takeWaiters(group: group), [])
            case .exhausted(let item):
                exhausted.append((item, log.withLock { $0.entry(item.sequence) }))
                return (false, [], raiseTrimBound(&groups, force: true))
            }
        }
        if isClosed { throw MessageQueueError.closed(InMemoryBackend.providerName) }
        finish(woken: woken, publishers: publishers, exhausted: exhausted, group: group)
    }

    private func finish(
        woken: [WakeSignal],
        publishers: [Publisher],
        exhausted: [(GroupState.Exhausted, Entry)],
        group: Int
    ) {
        for signal in woken { signal.notify() }
        for publisher in publishers { publisher.resume() }
        guard !exhausted.isEmpty, let registry else { return }
        let (groupName, metrics) = groups.withLock { ($0.groups[group].group, $0.groups[group].metrics) }
        for _ in exhausted { metrics.deadLettered() }
        let letters = exhausted.map { item, entry in
            DeadLetter(
                key: key, group: groupName, id: String(item.sequence), deliveryCount: item.deliveries,
                reason: .maxDeliveries, lastError: item.lastError, publishedAt: entry.publishedAt,
                payload: entry.payload
            )
        }
        registry.deadLetter(letters, from: key)
    }

    // MARK: Closing

    /// Fails suspended publishers, wakes consumers so they see the close, and frees the messages.
    func close() {
        let (woken, publishers) = groups.withLock { groups -> ([WakeSignal], [Publisher]) in
            var woken = groups.waiters.values.map(\.signal)
            groups = GroupsState(isClosed: true)
            let publishers = log.withLock { log -> [Publisher] in
                woken += log.takeWaiters()
                let publishers = log.publishers.map(\.continuation)
                log = LogState(isClosed: true)
                return publishers
            }
            return (woken, publishers)
        }
        for signal in woken { signal.notify() }
        for publisher in publishers { publisher.resume(throwing: MessageQueueError.closed(InMemoryBackend.providerName)) }
    }
}

/// 64 bytes that keep the fields around it on different cache lines.
private struct CacheLinePadding {
    let words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}
