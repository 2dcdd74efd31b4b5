/// The state of one consumer group of one key: what was delivered, to whom and until when, and
/// what is due again. Rebuilt by every process from the group's snapshot and journal
/// (``GroupEvent``), so all of them agree on it.
///
/// Everything below ``floor`` is acknowledged, so retention may delete it; between the floor and
/// ``cursor`` a message is pending (held by a consumer), released (handed back, due again at a
/// time), or acknowledged.
struct GroupLedger: Equatable {
    /// A delivery not yet acknowledged.
    struct Holding: Equatable {
        var deliveryCount: UInt32
        /// Milliseconds since the Unix epoch after which any member may take it.
        var deadline: Int64
        var owner: UInt64
    }

    /// A message handed back by `nack`.
    struct Release: Equatable {
        var deliveryCount: UInt32
        /// Milliseconds since the Unix epoch from which it may be delivered again.
        var due: Int64
        var reason: String?
    }

    /// A message to deliver now.
    struct Due: Equatable {
        var sequence: UInt64
        /// The number of this delivery: 1 for a message never delivered in the group.
        var deliveryCount: UInt32
        /// The reason given when it was last handed back, if any.
        var lastError: String?
    }

    /// The next sequence never delivered in this group.
    private(set) var cursor: UInt64
    private(set) var pending: [UInt64: Holding] = [:]
    private(set) var released: [UInt64: Release] = [:]

    /// A group that has delivered nothing yet and starts at `cursor`: the oldest retained message.
    init(cursor: UInt64) {
        self.cursor = cursor
    }

    /// Every message below it is acknowledged.
    var floor: UInt64 {
        min(cursor, pending.keys.min() ?? .max, released.keys.min() ?? .max)
    }

    mutating func apply(_ event: GroupEvent) {
        switch event {
        case let .delivered(sequence, deliveryCount, deadline, owner):
            released[sequence] = nil
            pending[sequence] = Holding(deliveryCount: deliveryCount, deadline: deadline, owner: owner)
            if sequence >= cursor { cursor = sequence + 1 }
        case let .acknowledged(sequence):
            pending[sequence] = nil
            released[sequence] = nil
            // Dead-lettering a message never delivered (an unreadable record) also moves the cursor.
            if sequence >= cursor { cursor = sequence + 1 }
        case let .released(sequence, due, reason):
            // A release of a message already acknowledged or taken over changes nothing.
            guard let holding = pending.removeValue(forKey: sequence) else { return }
            released[sequence] = Release(deliveryCount: holding.deliveryCount, due: due, reason: reason)
        case let .returned(sequence):
            guard let holding = pending.removeValue(forKey: sequence) else { return }
            released[sequence] = Release(deliveryCount: holding.deliveryCount - 1, due: 0, reason: nil)
        }
    }

    /// Up to `limit` messages to deliver at `now`: first those due again (handed back, or held
    /// past their deadline), oldest first, then new ones from the cursor up to `lastSequence`.
    func due(now: Int64, lastSequence: UInt64, limit: Int) -> [Due] {
        var redeliveries: [Due] = []
        for (sequence, release) in released where release.due <= now {
            redeliveries.append(Due(sequence: sequence, deliveryCount: release.deliveryCount + 1, lastError: release.reason))
        }
        for (sequence, holding) in pending where holding.deadline <= now {
            redeliveries.append(Due(sequence: sequence, deliveryCount: holding.deliveryCount + 1, lastError: nil))
        }
        redeliveries.sort { $0.sequence < $1.sequence }
        var result = Array(redeliveries.prefix(limit))
        var next = cursor
        while result.count < limit, next <= lastSequence {
            result.append(Due(sequence: next, deliveryCount: 1, lastError: nil))
            next += 1
        }
        return result
    }

    /// The earliest time something held or handed back becomes due, for a consumer with nothing
    /// else to do.
    var nextDeadline: Int64? {
        let holds = pending.values.map(\.deadline).min()
        let releases = released.values.map(\.due).min()
        switch (holds, releases) {
        case let (hold?, release?): return min(hold, release)
        case let (hold?, nil): return hold
        case let (nil, release?): return release
        case (nil, nil): return nil
        }
    }

    // MARK: Snapshot encoding

    /// The whole state as bytes, for the group's snapshot file.
    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        SegmentFormat.appendLittleEndian(cursor, to: &bytes)
        SegmentFormat.appendLittleEndian(UInt32(pending.count), to: &bytes)
        for (sequence, holding) in pending.sorted(by: { $0.key < $1.key }) {
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
            SegmentFormat.appendLittleEndian(holding.deliveryCount, to: &bytes)
            SegmentFormat.appendLittleEndian(holding.deadline, to: &bytes)
            SegmentFormat.appendLittleEndian(holding.owner, to: &bytes)
        }
        SegmentFormat.appendLittleEndian(UInt32(released.count), to: &bytes)
        for (sequence, release) in released.sorted(by: { $0.key < $1.key }) {
            let reason = Array((release.reason ?? "").utf8)
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
            SegmentFormat.appendLittleEndian(release.deliveryCount, to: &bytes)
            SegmentFormat.appendLittleEndian(release.due, to: &bytes)
            SegmentFormat.appendLittleEndian(UInt32(reason.count), to: &bytes)
            bytes.append(contentsOf: reason)
        }
        return bytes
    }

    /// Decodes ``encoded``; `nil` when the bytes do not hold a whole state.
    init?(encoded bytes: UnsafeRawBufferPointer) {
        var offset = 0
        func take<T: FixedWidthInteger>(_ type: T.Type) -> T? {
            guard bytes.count - offset >= MemoryLayout<T>.size else { return nil }
            defer { offset += MemoryLayout<T>.size }
            return SegmentFormat.readLittleEndian(type, bytes, at: offset)
        }
        guard let cursor = take(UInt64.self), let pendingCount = take(UInt32.self) else { return nil }
        self.cursor = cursor
        for _ in 0..<pendingCount {
            guard let sequence = take(UInt64.self), let count = take(UInt32.self), let deadline = take(Int64.self), let owner = take(UInt64.self) else { return nil }
            pending[sequence] = Holding(deliveryCount: count, deadline: deadline, owner: owner)
        }
        guard let releasedCount = take(UInt32.self) else { return nil }
        for _ in 0..<releasedCount {
            guard let sequence = take(UInt64.self), let count = take(UInt32.self), let due = take(Int64.self), let length = take(UInt32.self),
                  bytes.count - offset >= Int(length)
            else { return nil }
            let reason = String(decoding: bytes[offset..<(offset + Int(length))], as: UTF8.self)
            offset += Int(length)
            released[sequence] = Release(deliveryCount: count, due: due, reason: reason.isEmpty ? nil : reason)
        }
        guard offset == bytes.count else { return nil }
    }
}
