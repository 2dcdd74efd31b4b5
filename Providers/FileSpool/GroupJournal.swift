import AbstractBackend
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One consumer group of one key on disk, shared by every process that consumes it.
///
/// The state (``GroupLedger``) lives in two files of the group's directory: `snapshot`, the state
/// at the start of a generation, and `journal`, the ``GroupEvent``s since. Both use the segment
/// format (header, then checksummed records). A process changes the state only inside
/// ``update(_:)``, which holds an exclusive `flock` on `journal.lock`, first replays what other
/// processes appended, then appends its own events. When the journal grows past
/// ``compactionThreshold`` the process holding the lock writes the next generation's snapshot and
/// starts an empty journal; the others notice the new files and reload.
///
/// Journal appends are not synced: a process crash loses nothing (the data is in the page cache),
/// and a power loss can at worst forget recent deliveries and acknowledgements, which means
/// messages delivered again — the at-least-once contract. Snapshots are written crash-safely
/// (temporary file, sync, rename, directory sync).
///
/// Not thread-safe: one owner per process.
final class GroupJournal {
    let directory: String
    let compactionThreshold: Int
    private let logger: Logger
    private let lockFile: SpoolFile
    /// The open journal and what this process has replayed of it.
    private var state: Loaded

    static let lockFileName = "journal.lock"
    static let journalFileName = "journal"
    static let snapshotFileName = "snapshot"
    static let nameFileName = "name"

    /// Opens the group in `directory` (created, 0700, when missing). A group that does not exist
    /// yet starts at `startCursor`, the oldest message its key retains.
    init(directory: String, group: ConsumerGroup, startCursor: UInt64, compactionThreshold: Int = 4 << 20, logger: Logger) throws(MessageQueueError) {
        self.directory = directory
        self.compactionThreshold = compactionThreshold
        self.logger = logger
        try SpoolFile.makeDirectory(directory)
        let lockFile = try SpoolFile(path: directory + "/" + Self.lockFileName, create: true)
        try lockFile.lock(exclusive: true)
        defer { lockFile.unlock() }
        let loaded = try Self.load(directory: directory, group: group, startCursor: startCursor, logger: logger)
        self.lockFile = lockFile
        state = loaded
    }

    /// Runs `body` on the group's current state, under the group's lock, and appends the events
    /// it returns. `body` must not block: other processes wait for the lock meanwhile.
    func update<Result>(_ body: (GroupLedger) throws(MessageQueueError) -> (events: [GroupEvent], result: Result)) throws(MessageQueueError) -> Result {
        try lockFile.lock(exclusive: true)
        defer { lockFile.unlock() }
        try refresh()
        let (events, result) = try body(state.ledger)
        if !events.isEmpty {
            var bytes: [UInt8] = []
            for event in events {
                state.lastEvent += 1
                event.encoded.withUnsafeBytes {
                    SegmentFormat.appendRecord(sequence: state.lastEvent, publishedAtMilliseconds: 0, payload: $0, to: &bytes)
                }
                state.ledger.apply(event)
            }
            try state.journal.write(bytes, at: state.replayedEnd)
            state.replayedEnd += bytes.count
            if state.replayedEnd > compactionThreshold { try compact() }
        }
        return result
    }

    /// Reads the current state without changing it (under the lock, so it is consistent).
    func read() throws(MessageQueueError) -> GroupLedger {
        try update { ledger throws(MessageQueueError) in ([], ledger) }
    }

    // MARK: Replaying

    /// Catches up with other processes: reloads when the journal was replaced by a compaction,
    /// otherwise replays the events appended since. Runs under the lock.
    private func refresh() throws(MessageQueueError) {
        if try FileIdentity(path: directory + "/" + Self.journalFileName) != state.identity {
            state = try Self.load(directory: directory, group: nil, startCursor: state.ledger.cursor, logger: logger)
            return
        }
        let size = try state.journal.size
        guard size > state.replayedEnd else { return }
        let bytes = try state.journal.read(at: state.replayedEnd, count: size - state.replayedEnd)
        let replay = Self.replay(bytes, from: 0, after: state.lastEvent, into: &state.ledger, logger: logger, file: state.journal.path)
        state.lastEvent = replay.lastEvent
        let intactEnd = state.replayedEnd + replay.intactEnd
        if intactEnd < size {
            // A process died in the middle of an append: its unfinished event never happened.
            try state.journal.truncate(to: intactEnd)
        }
        state.replayedEnd = intactEnd
    }

    /// Applies the intact events in `bytes` from `offset`; returns where they end and the last
    /// event number.
    private static func replay(_ bytes: [UInt8], from offset: Int, after lastEvent: UInt64, into ledger: inout GroupLedger, logger: Logger, file: String) -> (intactEnd: Int, lastEvent: UInt64) {
        bytes.withUnsafeBytes { raw in
            let scan = SegmentScan(raw, from: offset, lastSequence: lastEvent)
            for range in scan.damaged {
                logger.error("spool group journal has a damaged event; skipping it", metadata: ["file": "\(file)", "bytes": "\(range)"])
            }
            for record in scan.records {
                if let event = GroupEvent(UnsafeRawBufferPointer(rebasing: raw[record.payloadRange])) {
                    ledger.apply(event)
                } else {
                    logger.error("spool group journal has an event this version cannot read; skipping it", metadata: ["file": "\(file)", "event": "\(record.sequence)"])
                }
            }
            return (scan.intactEnd, scan.records.last?.sequence ?? lastEvent)
        }
    }

    private struct Loaded {
        var journal: SpoolFile
        var identity: FileIdentity
        var generation: UInt64
        var ledger: GroupLedger
        /// How far this process has replayed the journal, and the number of its last event.
        var replayedEnd: Int
        var lastEvent: UInt64
    }

    /// Reads the snapshot and replays the journal, creating either when missing. Runs under the lock.
    private static func load(directory: String, group: ConsumerGroup?, startCursor: UInt64, logger: Logger) throws(MessageQueueError) -> Loaded {
        let snapshotPath = directory + "/" + snapshotFileName
        var generation: UInt64 = 1
        var ledger = GroupLedger(cursor: startCursor)
        if FileManager.default.fileExists(atPath: snapshotPath) {
            let file = try SpoolFile(path: snapshotPath, create: false)
            let bytes = try file.read(at: 0, count: try file.size)
            guard let snapshot = bytes.withUnsafeBytes({ decodeSnapshot($0) }) else {
                throw MessageQueueError(.dataCorrupted, "the group snapshot \(snapshotPath) is damaged; move the group's directory away to start the group afresh at the oldest retained message")
            }
            (generation, ledger) = snapshot
        } else {
            // A new group: the starting point is recorded first, so every process starts the
            // group at the same message.
            if let group {
                try SpoolFile.replace(directory: directory, name: nameFileName, bytes: Array(group.name.utf8))
            }
            try writeSnapshot(directory: directory, generation: generation, ledger: ledger)
        }
        let journalPath = directory + "/" + journalFileName
        if let file = try? SpoolFile(path: journalPath, create: false),
           let bytes = try? file.read(at: 0, count: try file.size),
           bytes.withUnsafeBytes({ (try? SegmentFormat.parseHeader($0)) == generation }) {
            let replay = replay(bytes, from: SegmentFormat.headerLength, after: 0, into: &ledger, logger: logger, file: journalPath)
            if replay.intactEnd < bytes.count { try file.truncate(to: replay.intactEnd) }
            return Loaded(journal: file, identity: try FileIdentity(path: journalPath), generation: generation, ledger: ledger, replayedEnd: replay.intactEnd, lastEvent: replay.lastEvent)
        }
        // No journal, or one from before the snapshot (a compaction interrupted after writing
        // the snapshot): its events are in the snapshot already.
        try SpoolFile.replace(directory: directory, name: journalFileName, bytes: SegmentFormat.header(firstSequence: generation))
        let file = try SpoolFile(path: journalPath, create: false)
        return Loaded(journal: file, identity: try FileIdentity(path: journalPath), generation: generation, ledger: ledger, replayedEnd: SegmentFormat.headerLength, lastEvent: 0)
    }

    // MARK: Compaction

    /// Writes the state as the next generation's snapshot and starts an empty journal. Runs
    /// under the lock. The snapshot goes first: a crash in between leaves a journal of an older
    /// generation, which loading discards.
    private func compact() throws(MessageQueueError) {
        let next = state.generation + 1
        try Self.writeSnapshot(directory: directory, generation: next, ledger: state.ledger)
        try SpoolFile.replace(directory: directory, name: Self.journalFileName, bytes: SegmentFormat.header(firstSequence: next))
        let path = directory + "/" + Self.journalFileName
        state = Loaded(
            journal: try SpoolFile(path: path, create: false), identity: try FileIdentity(path: path), generation: next,
            ledger: state.ledger, replayedEnd: SegmentFormat.headerLength, lastEvent: 0
        )
    }

    private static func writeSnapshot(directory: String, generation: UInt64, ledger: GroupLedger) throws(MessageQueueError) {
        var bytes = SegmentFormat.header(firstSequence: generation)
        ledger.encoded.withUnsafeBytes {
            SegmentFormat.appendRecord(sequence: 1, publishedAtMilliseconds: 0, payload: $0, to: &bytes)
        }
        try SpoolFile.replace(directory: directory, name: snapshotFileName, bytes: bytes)
    }

    private static func decodeSnapshot(_ bytes: UnsafeRawBufferPointer) -> (UInt64, GroupLedger)? {
        guard let generation = try? SegmentFormat.parseHeader(bytes),
              let record = SegmentFormat.record(in: bytes, at: SegmentFormat.headerLength),
              record.range.upperBound == bytes.count,
              let ledger = GroupLedger(encoded: UnsafeRawBufferPointer(rebasing: bytes[record.payloadRange]))
        else { return nil }
        return (generation, ledger)
    }
}

/// A file's device and inode: how a process tells that a path now names another file.
struct FileIdentity: Equatable {
    let device: UInt64
    let inode: UInt64

    init(path: String) throws(MessageQueueError) {
        var status = stat()
        guard stat(path, &status) == 0 else { throw SpoolFile.failure("stat", path) }
        device = UInt64(status.st_dev)
        inode = UInt64(status.st_ino)
    }
}
