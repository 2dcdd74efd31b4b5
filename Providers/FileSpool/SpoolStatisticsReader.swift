import AbstractBackend
import Foundation
import Logging

extension FileSpoolBackend: MessageQueueInspecting {
    /// Statistics of the keys in the spool, written by any process: see
    /// ``MessageQueueInspecting/statistics(keys:)``.
    ///
    /// Reads every retained segment of each key and replays each group's journal, on a thread of
    /// its own; it takes each group's lock only as long as a consumer's claim would.
    nonisolated(nonsending) public func statistics(keys: [MessageQueueKey]?) async throws -> [KeyStatistics] {
        guard !isClosed else { throw MessageQueueError.closed(Self.providerName) }
        let reader = SpoolStatisticsReader(directories: directories, counters: counters, logger: logger)
        let thread = OwnedThread(name: "abe-spool-stats")
        defer { thread.stop() }
        return try await thread.run { () throws(MessageQueueError) in try reader.statistics(keys: keys) }
    }
}

/// Reads keys' logs and groups' journals for ``FileSpoolBackend/statistics(keys:)`` without
/// creating anything: a key or group directory that does not exist yet is not made.
///
/// Blocking (file I/O, `flock`): call it on a spool thread.
struct SpoolStatisticsReader: Sendable {
    let directories: KeyDirectories
    let counters: SpoolCounters
    let logger: Logger

    func statistics(keys: [MessageQueueKey]?) throws(MessageQueueError) -> [KeyStatistics] {
        let wanted = keys.map { Array(Set($0)).sorted() } ?? directories.allKeys().filter { !$0.isDeadLetter }
        let now = ConsumerFiles.now()
        var result: [KeyStatistics] = []
        for key in wanted {
            result.append(try statistics(of: key, now: now))
        }
        return result
    }

    private func statistics(of key: MessageQueueKey, now: Int64) throws(MessageQueueError) -> KeyStatistics {
        // A dead-letter key's dead letters stay in it, so it has none of its own.
        var deadLetters = 0
        if !key.isDeadLetter, let letters = try log(of: key.deadLetterKey) { deadLetters = length(letters) }
        guard let log = try log(of: key) else {
            return KeyStatistics(key: key, length: 0, groups: [], deadLetters: deadLetters)
        }
        let groupsDirectory = log.directory + "/" + KeyDirectories.groupsDirectoryName
        let names = (try? FileManager.default.contentsOfDirectory(atPath: groupsDirectory)) ?? []
        var groups: [GroupStatistics] = []
        for name in names where !name.hasPrefix(".") {
            let path = groupsDirectory + "/" + name
            // A group without its snapshot is being created right now; its creator sets its start.
            guard FileManager.default.fileExists(atPath: path + "/" + GroupJournal.snapshotFileName),
                  let groupName = try? String(contentsOfFile: path + "/" + GroupJournal.nameFileName, encoding: .utf8),
                  let group = try? ConsumerGroup(groupName)
            else { continue }
            let ledger = try GroupJournal(directory: path, group: group, startCursor: log.firstSequence, logger: logger).read()
            groups.append(try statistics(of: group, ledger, in: log, now: now))
        }
        return KeyStatistics(key: key, length: length(log), groups: groups.sorted { $0.group < $1.group }, deadLetters: deadLetters)
    }

    private func statistics(of group: ConsumerGroup, _ ledger: GroupLedger, in log: SegmentReader, now: Int64) throws(MessageQueueError) -> GroupStatistics {
        // A message a consumer fetched ahead and gave back unseen (`returned`) has no delivery to
        // count: it is undelivered, not pending.
        let handedBack = ledger.released.filter { $0.value.deliveryCount > 0 }.keys
        let fetchedAhead = ledger.released.count - handedBack.count
        let oldest = min(ledger.pending.keys.min() ?? .max, handedBack.min() ?? .max)
        var age: Duration?
        if oldest != .max, let record = try log.read([oldest])[oldest] {
            age = .milliseconds(max(0, now - record.publishedAt))
        }
        let unread = log.lastSequence >= ledger.cursor ? Int(log.lastSequence - ledger.cursor + 1) : 0
        return GroupStatistics(
            group: group, pending: ledger.pending.count + handedBack.count, undelivered: unread + fetchedAhead, oldestPendingAge: age
        )
    }

    /// The log of `key`, read to its end, or `nil` when the key has no directory.
    private func log(of key: MessageQueueKey) throws(MessageQueueError) -> SegmentReader? {
        let directory = directories.keysDirectory + "/" + SpoolNames.component(forKey: key)
        // The `key` file tells a key's directory from that of another key with the same hashed name.
        guard let stored = try? String(contentsOfFile: directory + "/" + KeyDirectories.keyFileName, encoding: .utf8),
              Array(stored.utf8) == Array(key.rawValue.utf8)
        else { return nil }
        let reader = SegmentReader(directory: directory, counters: counters, logger: logger)
        try reader.refresh()
        return reader
    }

    private func length(_ log: SegmentReader) -> Int {
        log.lastSequence >= log.firstSequence ? Int(log.lastSequence - log.firstSequence + 1) : 0
    }
}
