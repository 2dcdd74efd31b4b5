import AbstractBackend

import struct Foundation.Date

extension InMemoryBackend: MessageQueueInspecting {
    /// Statistics of this process's keys: see ``MessageQueueInspecting/statistics(keys:)``.
    ///
    /// Pending counts deliveries not yet acknowledged (held, or handed back and due again);
    /// messages a consumer fetched ahead but never handed to the application count as undelivered.
    nonisolated(nonsending) public func statistics(keys: [MessageQueueKey]?) async throws -> [KeyStatistics] {
        guard !registry.isClosed else { throw MessageQueueError.closed(Self.providerName) }
        var logs: [MessageQueueKey: KeyLog] = [:]
        for log in registry.allLogs { logs[log.key] = log }
        let wanted = keys.map { Array(Set($0)) } ?? logs.keys.filter { !$0.isDeadLetter }
        let now = Date()
        return wanted.sorted().map { key in
            guard let log = logs[key] else { return KeyStatistics(key: key, length: 0, groups: [], deadLetters: 0) }
            let deadLetters = key.isDeadLetter ? 0 : logs[key.deadLetterKey].map { $0.inspect { _, retained, _ in retained.count } } ?? 0
            return log.inspect { groups, retained, publishedAt in
                KeyStatistics(
                    key: key,
                    length: retained.count,
                    groups: groups.map { Self.statistics(of: $0, end: retained.upperBound, now: now, publishedAt: publishedAt) }.sorted { $0.group < $1.group },
                    deadLetters: deadLetters
                )
            }
        }
    }

    private static func statistics(of group: GroupState, end: UInt64, now: Date, publishedAt: (UInt64) -> Date) -> GroupStatistics {
        var pending = 0
        var fetchedAhead = 0
        var oldest: UInt64?
        for index in 0..<group.slots.count {
            let slot = group.slots[index]
            guard slot.state != .acked else { continue }
            // A slot given back before the application saw it has no delivery to count.
            if slot.deliveries == 0 {
                fetchedAhead += 1
                continue
            }
            pending += 1
            if oldest == nil { oldest = group.floor + UInt64(index) }
        }
        let age = oldest.map { sequence in Duration.seconds(max(0, now.timeIntervalSince(publishedAt(sequence)))) }
        return GroupStatistics(
            group: group.group,
            pending: pending,
            undelivered: Int(end - min(end, group.cursor)) + fetchedAhead,
            oldestPendingAge: age
        )
    }
}
