import AbstractBackend
import Foundation
import Logging

/// One key's log on disk: numbered segment files in the key's directory, appended to by any
/// number of processes, one at a time under an exclusive `flock` on the directory's `append.lock`.
///
/// Opening recovers the newest segment: a torn tail (a write a crash interrupted) is truncated,
/// and damaged records inside it are reported and skipped. Before each append the log catches up
/// with what other processes appended since, so sequences stay gapless across processes.
///
/// Not thread-safe: the spool's writer thread owns it.
final class SegmentLog {
    /// What opening the log found and repaired.
    struct Recovery: Equatable {
        /// Bytes of a torn tail removed from the newest segment.
        var truncatedBytes = 0
        /// Damaged stretches skipped inside segments: (segment file name, byte range).
        var damaged: [(segment: String, range: Range<Int>)] = []

        static func == (lhs: Recovery, rhs: Recovery) -> Bool {
            lhs.truncatedBytes == rhs.truncatedBytes
                && lhs.damaged.map(\.segment) == rhs.damaged.map(\.segment)
                && lhs.damaged.map(\.range) == rhs.damaged.map(\.range)
        }
    }

    /// One message to append: its JSON text and publish time.
    struct Entry {
        var json: [UInt8]
        var publishedAtMilliseconds: Int64
    }

    let directory: String
    /// A segment reaching this size is closed and the next append starts a new one.
    let segmentLimit: Int
    private let logger: Logger
    private let counters: SpoolCounters
    private let lockFile: SpoolFile
    private var current: SpoolFile
    private var currentName: String
    /// How far this process has read the current segment.
    private var end: Int
    private(set) var lastSequence: UInt64
    private(set) var recovery = Recovery()
    /// The bytes of the append being written, kept between appends so that a busy writer does
    /// not allocate (and fault in) a fresh buffer for every batch.
    private var appendBuffer: [UInt8] = []

    /// The largest append buffer kept for the next append.
    static let keptAppendBuffer = 4 << 20
    static let lockFileName = "append.lock"
    static let segmentSuffix = ".seg"

    /// Opens (creating when needed) the log in `directory`, which must exist.
    init(directory: String, segmentLimit: Int = 64 << 20, counters: SpoolCounters = SpoolCounters(), logger: Logger) throws(MessageQueueError) {
        self.directory = directory
        self.segmentLimit = segmentLimit
        self.counters = counters
        self.logger = logger
        let lockFile = try SpoolFile(path: directory + "/" + Self.lockFileName, create: true)
        try lockFile.lock(exclusive: true)
        defer { lockFile.unlock() }
        let opened = try Self.recoverNewestSegment(directory: directory, logger: logger)
        self.lockFile = lockFile
        current = opened.file
        currentName = opened.name
        end = opened.end
        lastSequence = opened.lastSequence
        recovery = opened.recovery
        counters.truncatedBytes.add(opened.recovery.truncatedBytes, ordering: .relaxed)
    }

    /// Opens the newest segment (creating the first one in an empty log), truncating a torn
    /// tail and reporting damaged records. Runs under the append lock.
    private static func recoverNewestSegment(directory: String, logger: Logger) throws(MessageQueueError) -> (file: SpoolFile, name: String, end: Int, lastSequence: UInt64, recovery: Recovery) {
        try removeUnfinishedSegments(in: directory)
        guard let name = try segmentNames(in: directory).last else {
            let name = segmentName(firstSequence: 1)
            let file = try createSegment(directory: directory, name: name, firstSequence: 1)
            return (file, name, SegmentFormat.headerLength, 0, Recovery())
        }
        let file = try SpoolFile(path: directory + "/" + name, create: false)
        let bytes = try file.read(at: 0, count: try file.size)
        let firstSequence: UInt64
        do {
            firstSequence = try bytes.withUnsafeBytes { raw throws(SegmentFormat.HeaderProblem) in try SegmentFormat.parseHeader(raw) }
        } catch {
            throw MessageQueueError(.dataCorrupted, "cannot read segment \(directory)/\(name): \(error); move the file away to continue without it")
        }
        let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: firstSequence - 1) }
        var recovery = Recovery()
        for range in scan.damaged {
            recovery.damaged.append((name, range))
            logger.error("spool segment has a damaged record; skipping it", metadata: ["segment": "\(directory)/\(name)", "bytes": "\(range)"])
        }
        if scan.intactEnd < bytes.count {
            recovery.truncatedBytes = bytes.count - scan.intactEnd
            try file.truncate(to: scan.intactEnd)
            try file.syncData()
            logger.warning("spool segment had a torn tail; truncated it", metadata: ["segment": "\(directory)/\(name)", "bytes": "\(recovery.truncatedBytes)"])
        }
        return (file, name, scan.intactEnd, scan.records.last?.sequence ?? firstSequence - 1, recovery)
    }

    /// Appends `entries` in order and returns their sequences. Not durable until ``sync()``.
    func append(_ entries: [Entry]) throws(MessageQueueError) -> ClosedRange<UInt64> {
        precondition(!entries.isEmpty)
        try lockFile.lock(exclusive: true)
        defer { lockFile.unlock() }
        try catchUp()
        if end >= segmentLimit { try startSegment() }
        let first = lastSequence + 1
        var bytes = appendBuffer
        appendBuffer = []
        defer {
            // Large one-off appends (a batch of big payloads) are not worth keeping.
            if bytes.capacity <= Self.keptAppendBuffer {
                bytes.removeAll(keepingCapacity: true)
                appendBuffer = bytes
            }
        }
        bytes.reserveCapacity(entries.reduce(0) { $0 + SegmentFormat.recordHeaderLength + $1.json.count })
        var sequence = first
        for entry in entries {
            entry.json.withUnsafeBytes {
                SegmentFormat.appendRecord(sequence: sequence, publishedAtMilliseconds: entry.publishedAtMilliseconds, payload: $0, to: &bytes)
            }
            sequence += 1
        }
        try current.write(bytes, at: end)
        end += bytes.count
        lastSequence = sequence - 1
        return first...lastSequence
    }

    /// Makes everything appended so far durable.
    func sync() throws(MessageQueueError) {
        try current.syncData()
    }

    /// Reads records other processes appended to the current segment (or to newer ones) since
    /// this process last looked, repairing a torn tail a crashed writer left.
    private func catchUp() throws(MessageQueueError) {
        let size = try current.size
        if size > end {
            // Only the new bytes: offsets in the scan are relative to `end`.
            let bytes = try current.read(at: end, count: size - end)
            let scan = bytes.withUnsafeBytes { SegmentScan($0, from: 0, lastSequence: lastSequence) }
            lastSequence = scan.records.last?.sequence ?? lastSequence
            for range in scan.damaged {
                logger.error("spool segment has a damaged record; skipping it", metadata: ["segment": "\(directory)/\(currentName)", "bytes": "\((range.lowerBound + end)..<(range.upperBound + end))"])
            }
            let intactEnd = end + scan.intactEnd
            if intactEnd < size {
                try current.truncate(to: intactEnd)
                counters.truncatedBytes.add(size - intactEnd, ordering: .relaxed)
                logger.warning("spool segment had a torn tail left by another writer; truncated it", metadata: ["segment": "\(directory)/\(currentName)", "bytes": "\(size - intactEnd)"])
            }
            end = intactEnd
        }
        guard end >= segmentLimit else { return }
        // Another process may have started newer segments.
        let newest = try Self.segmentNames(in: directory).last ?? currentName
        guard newest != currentName else { return }
        currentName = newest
        current = try SpoolFile(path: directory + "/" + newest, create: false)
        end = SegmentFormat.headerLength
        lastSequence = Self.firstSequence(ofSegment: newest).map { $0 - 1 } ?? lastSequence
        try catchUp()
    }

    /// Closes the full segment and starts the next, named by its first sequence.
    private func startSegment() throws(MessageQueueError) {
        try current.syncData()
        let name = Self.segmentName(firstSequence: lastSequence + 1)
        current = try Self.createSegment(directory: directory, name: name, firstSequence: lastSequence + 1)
        currentName = name
        end = SegmentFormat.headerLength
    }

    // MARK: Files

    /// `<first sequence, 20 digits>.seg`, so that names sort in log order.
    static func segmentName(firstSequence: UInt64) -> String {
        let digits = String(firstSequence)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits + segmentSuffix
    }

    static func firstSequence(ofSegment name: String) -> UInt64? {
        guard name.hasSuffix(segmentSuffix), name.utf8.count == 20 + segmentSuffix.utf8.count else { return nil }
        return UInt64(name.prefix(20))
    }

    /// The segment files of `directory`, oldest first.
    static func segmentNames(in directory: String) throws(MessageQueueError) -> [String] {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory)
        } catch {
            throw MessageQueueError(.unavailable, "cannot list \(directory): \(error.localizedDescription)")
        }
        return names.filter { firstSequence(ofSegment: $0) != nil }.sorted()
    }

    /// Creates a segment crash-safely (see ``SpoolFile/replace(directory:name:bytes:)``), so a
    /// segment that exists always has its whole header.
    private static func createSegment(directory: String, name: String, firstSequence: UInt64) throws(MessageQueueError) -> SpoolFile {
        try SpoolFile.replace(directory: directory, name: name, bytes: SegmentFormat.header(firstSequence: firstSequence))
        return try SpoolFile(path: directory + "/" + name, create: false)
    }

    /// Removes segments a crash left half-created (still under their temporary name).
    private static func removeUnfinishedSegments(in directory: String) throws(MessageQueueError) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for name in names where name.hasPrefix(".") && name.contains(segmentSuffix + ".") && name.hasSuffix(".new") {
            guard unlink(directory + "/" + name) == 0 else { throw SpoolFile.failure("remove", directory + "/" + name) }
        }
    }
}
