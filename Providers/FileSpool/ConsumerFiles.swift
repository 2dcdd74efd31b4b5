import AbstractBackend
import Foundation
import Logging

/// The files one consuming iterator works on — each key's ``SegmentReader`` and the group's
/// ``GroupJournal`` — and the blocking operations on them. Used only on the iterator's
/// ``OwnedThread``.
final class ConsumerFiles: @unchecked Sendable {
    /// A message claimed for delivery, or for the dead letter.
    struct Claimed: Sendable {
        var key: MessageQueueKey
        var sequence: UInt64
        var deliveryCount: Int
        var publishedAtMilliseconds: Int64
        var payload: [UInt8]
        var lastError: String?
    }

    /// What one claim round found.
    struct Claim: Sendable {
        var deliveries: [Claimed] = []
        /// Past `maxDeliveries`: held by this member until their dead letter is written.
        var exhausted: [Claimed] = []
        /// When something held or handed back becomes due, in milliseconds since the epoch.
        var nextDeadline: Int64?
    }

    let configuration: FileSpoolConfiguration
    let directories: KeyDirectories
    let group: ConsumerGroup
    let owner: UInt64
    private let counters: SpoolCounters
    private let logger: Logger
    private var readers: [MessageQueueKey: SegmentReader] = [:]
    private var journals: [MessageQueueKey: GroupJournal] = [:]
    private var otherGroups: [String: GroupJournal] = [:]
    private var nextRetention: [MessageQueueKey: ContinuousClock.Instant] = [:]

    static let retentionInterval = Duration.seconds(1)

    init(configuration: FileSpoolConfiguration, directories: KeyDirectories, group: ConsumerGroup, owner: UInt64, counters: SpoolCounters, logger: Logger) {
        self.configuration = configuration
        self.directories = directories
        self.group = group
        self.owner = owner
        self.counters = counters
        self.logger = logger
    }

    static func now() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }

    private func reader(for key: MessageQueueKey) throws(MessageQueueError) -> SegmentReader {
        if let reader = readers[key] { return reader }
        let reader = SegmentReader(directory: try directories.directory(for: key), counters: counters, logger: logger)
        readers[key] = reader
        return reader
    }

    private func journal(for key: MessageQueueKey) throws(MessageQueueError) -> GroupJournal {
        if let journal = journals[key] { return journal }
        let reader = try reader(for: key)
        try reader.refresh()
        let journal = try GroupJournal(directory: try directories.directory(for: group, of: key), group: group, startCursor: reader.firstSequence, logger: logger)
        journals[key] = journal
        return journal
    }

    /// Claims up to `limit` messages due in `keys`, starting with `keys[rotation]`.
    func claim(keys: [MessageQueueKey], rotation: Int, limit: Int) throws(MessageQueueError) -> Claim {
        var claim = Claim()
        guard !keys.isEmpty else { return claim }
        for step in 0..<keys.count where claim.deliveries.count < limit {
            let key = keys[(rotation + step) % keys.count]
            try claimDue(in: key, limit: limit - claim.deliveries.count, into: &claim)
            try applyRetention(to: key)
        }
        return claim
    }

    private func claimDue(in key: MessageQueueKey, limit: Int, into claim: inout Claim) throws(MessageQueueError) {
        let reader = try reader(for: key)
        try reader.refresh()
        let journal = try journal(for: key)
        let now = Self.now()
        let deadline = now + configuration.visibilityTimeout.wholeMilliseconds
        let maxDeliveries = configuration.maxDeliveries
        let owner = self.owner
        let (due, nextDeadline) = try journal.update { ledger throws(MessageQueueError) in
            let due = ledger.due(now: now, lastSequence: reader.lastSequence, limit: limit)
            // Past the limit, the message is held (count unchanged) while its dead letter is written.
            let events = due.map { item in
                GroupEvent.delivered(
                    sequence: item.sequence,
                    deliveryCount: Int(item.deliveryCount) > maxDeliveries ? item.deliveryCount - 1 : item.deliveryCount,
                    deadline: deadline, owner: owner
                )
            }
            return (events, (due, ledger.nextDeadline))
        }
        if let nextDeadline { claim.nextDeadline = min(claim.nextDeadline ?? .max, nextDeadline) }
        guard !due.isEmpty else { return }
        let records = try reader.read(due.map(\.sequence))
        var missing: [GroupEvent] = []
        for item in due {
            guard let record = records[item.sequence] else {
                // Damaged (reported by the reader) or deleted: nothing to deliver, ever.
                logger.error("spool record cannot be read; skipping it", metadata: ["key": "\(key)", "sequence": "\(item.sequence)"])
                missing.append(.acknowledged(sequence: item.sequence))
                continue
            }
            let claimed = Claimed(
                key: key, sequence: item.sequence, deliveryCount: Int(item.deliveryCount),
                publishedAtMilliseconds: record.publishedAt, payload: record.payload, lastError: item.lastError
            )
            if claimed.deliveryCount > maxDeliveries {
                claim.exhausted.append(claimed)
            } else {
                claim.deliveries.append(claimed)
            }
        }
        if !missing.isEmpty {
            try journal.update { _ throws(MessageQueueError) in (missing, ()) }
        }
    }

    /// Appends `events` to the group's journal of `key`.
    func record(_ events: [GroupEvent], for key: MessageQueueKey) throws(MessageQueueError) {
        try journal(for: key).update { _ throws(MessageQueueError) in (events, ()) }
    }

    /// What `nack` does: hands the delivery back (`.released`), or reports it exhausted, or
    /// nothing when this member no longer holds that delivery.
    enum Rejection: Sendable {
        case released
        case exhausted
        case notHeld
    }

    func reject(key: MessageQueueKey, sequence: UInt64, deliveryCount: Int, retryAfter: Duration, reason: String?) throws(MessageQueueError) -> Rejection {
        let owner = self.owner
        let maxDeliveries = configuration.maxDeliveries
        let due = Self.now() + retryAfter.wholeMilliseconds
        return try journal(for: key).update { ledger throws(MessageQueueError) in
            guard let holding = ledger.pending[sequence], holding.owner == owner, Int(holding.deliveryCount) == deliveryCount else {
                return ([], .notHeld)
            }
            if deliveryCount >= maxDeliveries { return ([], .exhausted) }
            return ([.released(sequence: sequence, due: due, reason: reason)], .released)
        }
    }

    /// Deletes the segments of `key` that every group has acknowledged, at most once a second.
    /// With no group at all nothing is deleted: a group created later must still see them.
    private func applyRetention(to key: MessageQueueKey) throws(MessageQueueError) {
        let now = ContinuousClock.now
        if let next = nextRetention[key], now < next { return }
        nextRetention[key] = now + Self.retentionInterval
        let keyDirectory = try directories.directory(for: key)
        let groupsDirectory = keyDirectory + "/" + KeyDirectories.groupsDirectoryName
        let names = (try? FileManager.default.contentsOfDirectory(atPath: groupsDirectory)) ?? []
        var floor = UInt64.max
        for name in names where !name.hasPrefix(".") {
            let path = groupsDirectory + "/" + name
            let journal: GroupJournal
            if path == journals[key]?.directory, let own = journals[key] {
                journal = own
            } else if let other = otherGroups[path] {
                journal = other
            } else {
                guard let groupName = try? String(contentsOfFile: path + "/" + GroupJournal.nameFileName, encoding: .utf8),
                      let other = try? ConsumerGroup(groupName)
                else { continue }
                journal = try GroupJournal(directory: path, group: other, startCursor: 1, logger: logger)
                otherGroups[path] = journal
            }
            floor = min(floor, try journal.read().floor)
        }
        guard floor != .max else { return }
        let reader = try reader(for: key)
        let deletable = reader.segments(entirelyBelow: floor)
        guard !deletable.isEmpty else { return }
        for name in deletable {
            _ = unlink(keyDirectory + "/" + name)
        }
        try SpoolFile.syncDirectory(keyDirectory)
        try reader.refresh()
    }

}
