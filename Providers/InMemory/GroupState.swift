import AbstractBackend

/// One consumer group's progress through one key's log.
///
/// Sequence numbers below `floor` are acknowledged; `slots[i]` describes `floor + i` for every
/// sequence number delivered at least once (`floor..<cursor`); `cursor` is the next message never
/// delivered. Slots sit in a queue indexed by `sequence - floor`, so claim and ack are O(1) without
/// hashing.
struct GroupState {
    /// The delivery state of one message. A plain struct rather than an enum with payloads, so
    /// the ring holds trivially copyable values.
    struct Slot {
        enum State: UInt8 {
            case acked
            /// Redelivered when `deadline` passes unless acknowledged.
            case pending
            /// Waiting in `ready` to be delivered again.
            case ready
        }

        var state: State
        /// Deliveries so far.
        var deliveries: Int
        var deadline: ContinuousClock.Instant

        static func pending(deliveries: Int, deadline: ContinuousClock.Instant) -> Slot {
            Slot(state: .pending, deliveries: deliveries, deadline: deadline)
        }
    }

    /// A delivery handed to a consumer.
    struct Claim {
        let sequence: UInt64
        let deliveries: Int
    }

    /// A message that exhausted its deliveries and must move to the dead-letter key.
    struct Exhausted {
        let sequence: UInt64
        let deliveries: Int
        let lastError: String?
    }

    let group: ConsumerGroup
    let metrics: MessageQueueMetrics.Delivery
    private(set) var floor: UInt64
    private(set) var cursor: UInt64
    private(set) var slots = Queue(vacancy: Slot(state: .acked, deliveries: 0, deadline: .now))
    /// Sequence numbers to deliver again, in the order they became ready.
    private var ready = Queue<UInt64>(vacancy: 0)
    /// No pending deadline is earlier than this; `nil` when nothing is pending.
    private(set) var earliestDeadline: ContinuousClock.Instant?
    /// The reasons given with `nack`, kept until the message is acknowledged or dead-lettered.
    private var lastErrors: [UInt64: String] = [:]

    init(group: ConsumerGroup, start: UInt64, metrics: MessageQueueMetrics.Delivery) {
        self.group = group
        self.metrics = metrics
        self.floor = start
        self.cursor = start
    }

    /// Takes up to `limit` deliveries: redeliveries first, then new messages below `end`.
    mutating func claim(
        limit: Int,
        end: UInt64,
        now: ContinuousClock.Instant,
        visibilityTimeout: Duration,
        into claims: inout [Claim]
    ) {
        let deadline = now + visibilityTimeout
        while claims.count < limit, let sequence = ready.popFirst() {
            let index = Int(sequence - floor)
            guard sequence >= floor, slots[index].state == .ready else { continue }
            slots[index].state = .pending
            slots[index].deliveries += 1
            slots[index].deadline = deadline
            claims.append(Claim(sequence: sequence, deliveries: slots[index].deliveries))
        }
        while claims.count < limit, cursor < end {
            slots.append(.pending(deliveries: 1, deadline: deadline))
            claims.append(Claim(sequence: cursor, deliveries: 1))
            cursor += 1
        }
        if !claims.isEmpty, earliestDeadline.map({ deadline < $0 }) ?? true {
            earliestDeadline = deadline
        }
    }

    /// Moves every pending message whose deadline has passed to `ready`, or to `exhausted` when
    /// it has had `maxDeliveries` deliveries.
    mutating func expire(now: ContinuousClock.Instant, maxDeliveries: Int, exhausted: inout [Exhausted]) {
        guard let earliest = earliestDeadline, earliest <= now else { return }
        var next: ContinuousClock.Instant?
        for index in 0..<slots.count where slots[index].state == .pending {
            let sequence = floor + UInt64(index)
            let deadline = slots[index].deadline
            if deadline > now {
                next = next.map { min($0, deadline) } ?? deadline
            } else if slots[index].deliveries >= maxDeliveries {
                slots[index].state = .acked
                exhausted.append(Exhausted(sequence: sequence, deliveries: slots[index].deliveries, lastError: lastErrors.removeValue(forKey: sequence)))
            } else {
                slots[index].state = .ready
                ready.append(sequence)
            }
        }
        earliestDeadline = next
        advanceFloor()
    }

    /// Acknowledges `sequence`. Returns whether the floor moved, which may let the log shrink.
    mutating func ack(_ sequence: UInt64) -> Bool {
        guard sequence >= floor, sequence < cursor else { return false }
        let index = Int(sequence - floor)
        if slots[index].state == .acked { return false }
        slots[index].state = .acked
        if !lastErrors.isEmpty { lastErrors[sequence] = nil }
        guard index == 0 else { return false }
        advanceFloor()
        return true
    }

    enum RejectOutcome {
        /// The delivery is no longer current: nothing changed.
        case stale
        /// Delivered again once `retryAfter` has passed.
        case retry
        /// This was the last allowed delivery.
        case exhausted(Exhausted)
    }

    /// Returns the delivery `deliveries` of `sequence` for redelivery after `retryAfter`.
    mutating func reject(
        _ sequence: UInt64,
        deliveries: Int,
        retryAfter: Duration,
        reason: String?,
        now: ContinuousClock.Instant,
        maxDeliveries: Int
    ) -> RejectOutcome {
        guard sequence >= floor, sequence < cursor else { return .stale }
        let index = Int(sequence - floor)
        guard slots[index].state == .pending, slots[index].deliveries == deliveries else { return .stale }
        if let reason { lastErrors[sequence] = reason }
        if deliveries >= maxDeliveries {
            slots[index].state = .acked
            let lastError = lastErrors.removeValue(forKey: sequence)
            advanceFloor()
            return .exhausted(Exhausted(sequence: sequence, deliveries: deliveries, lastError: lastError))
        }
        if retryAfter <= .zero {
            slots[index].state = .ready
            ready.append(sequence)
            return .retry
        }
        let deadline = now + retryAfter
        slots[index].deadline = deadline
        if earliestDeadline.map({ deadline < $0 }) ?? true { earliestDeadline = deadline }
        return .retry
    }

    /// Puts claimed but never handed-out deliveries back, without counting them as deliveries.
    /// They go to the front of `ready`, in their original order, so that order is kept.
    mutating func release(_ claims: some BidirectionalCollection<Claim>) {
        for claim in claims.reversed() where claim.sequence >= floor && claim.sequence < cursor {
            let index = Int(claim.sequence - floor)
            guard slots[index].state == .pending, slots[index].deliveries == claim.deliveries else { continue }
            slots[index].state = .ready
            slots[index].deliveries -= 1
            ready.prepend(claim.sequence)
        }
    }

    private mutating func advanceFloor() {
        var acked = 0
        while acked < slots.count, slots[acked].state == .acked { acked += 1 }
        guard acked > 0 else { return }
        slots.removeFirst(acked)
        floor += UInt64(acked)
    }
}
