import AbstractBackend
import Logging

/// Reads one key's log for consumers: follows the segments as writers in any process append and
/// roll them, and finds records by sequence.
///
/// A reader never repairs anything: bytes after the last intact record may be a write still in
/// progress, so they are simply not visible yet. A record lost to damage leaves a gap in the
/// sequences, which ``read(_:)`` reports as missing.
///
/// Not thread-safe: one consumer's thread owns it.
final class SegmentReader {
    private final class Segment {
        let name: String
        let first: UInt64
        let file: SpoolFile
        /// How far the segment has been scanned, and the offset of each sequence from `first`
        /// (`-1` for a sequence whose record was damaged).
        var scannedEnd = SegmentFormat.headerLength
        var offsets: [Int] = []
        var lastSequence: UInt64

        init(name: String, first: UInt64, file: SpoolFile) {
            self.name = name
            self.first = first
            self.file = file
            self.lastSequence = first - 1
        }
    }

    let directory: String
    private let logger: Logger
    private let counters: SpoolCounters
    private var segments: [Segment] = []

    init(directory: String, counters: SpoolCounters, logger: Logger) {
        self.directory = directory
        self.counters = counters
        self.logger = logger
    }

    /// The first sequence still on disk (retention deletes older segments), or 1 for an empty log.
    var firstSequence: UInt64 { segments.first?.first ?? 1 }

    /// The last sequence visible so far.
    var lastSequence: UInt64 { segments.last?.lastSequence ?? 0 }

    /// Looks for new segments and new records.
    func refresh() throws(MessageQueueError) {
        let names = try SegmentLog.segmentNames(in: directory)
        let known = Set(segments.map(\.name))
        // Segments retention deleted are gone; newer ones are added in order.
        segments.removeAll { !names.contains($0.name) }
        for name in names where !known.contains(name) {
            guard let first = SegmentLog.firstSequence(ofSegment: name),
                  let file = try? SpoolFile(path: directory + "/" + name, create: false)
            else { continue }
            segments.append(Segment(name: name, first: first, file: file))
        }
        for segment in segments {
            try scan(segment)
        }
    }

    private func scan(_ segment: Segment) throws(MessageQueueError) {
        let size = try segment.file.size
        guard size > segment.scannedEnd else { return }
        let bytes = try segment.file.read(at: segment.scannedEnd, count: size - segment.scannedEnd)
        let base = segment.scannedEnd
        bytes.withUnsafeBytes { raw in
            let scan = SegmentScan(raw, from: 0, lastSequence: segment.lastSequence)
            for range in scan.damaged {
                counters.damagedRecords.add(1, ordering: .relaxed)
                logger.error("spool segment has a damaged record; skipping it", metadata: ["segment": "\(directory)/\(segment.name)", "bytes": "\((range.lowerBound + base)..<(range.upperBound + base))"])
            }
            for record in scan.records {
                // Sequences the damage swallowed stay unreadable.
                while segment.first + UInt64(segment.offsets.count) < record.sequence { segment.offsets.append(-1) }
                segment.offsets.append(base + record.range.lowerBound)
                segment.lastSequence = record.sequence
            }
            segment.scannedEnd = base + scan.intactEnd
        }
    }

    /// The records of `sequences` that can be read: publish time and payload bytes. A sequence
    /// that is missing was damaged, or deleted by retention.
    func read(_ sequences: [UInt64]) throws(MessageQueueError) -> [UInt64: (publishedAt: Int64, payload: [UInt8])] {
        var result: [UInt64: (Int64, [UInt8])] = [:]
        for sequence in sequences {
            guard let segment = segments.last(where: { $0.first <= sequence }),
                  sequence <= segment.lastSequence
            else { continue }
            let offset = segment.offsets[Int(sequence - segment.first)]
            guard offset >= 0 else { continue }
            let header = try segment.file.read(at: offset, count: SegmentFormat.recordHeaderLength)
            guard header.count == SegmentFormat.recordHeaderLength else { continue }
            let length = header.withUnsafeBytes { Int(SegmentFormat.readLittleEndian(UInt32.self, $0, at: 0)) }
            let bytes = try segment.file.read(at: offset, count: SegmentFormat.recordHeaderLength + length)
            // Checked again: the page cache or the disk may have changed under us since the scan.
            guard let record = bytes.withUnsafeBytes({ SegmentFormat.record(in: $0, at: 0) }), record.sequence == sequence else {
                counters.damagedRecords.add(1, ordering: .relaxed)
                continue
            }
            result[sequence] = (record.publishedAtMilliseconds, Array(bytes[record.payloadRange]))
        }
        return result
    }

    /// Names of the segments every record of which is below `sequence`, oldest first: what
    /// retention may delete once every group acknowledged up to `sequence`. The newest segment
    /// is never among them.
    func segments(entirelyBelow sequence: UInt64) -> [String] {
        guard segments.count > 1 else { return [] }
        var names: [String] = []
        for index in 0..<(segments.count - 1) where segments[index + 1].first <= sequence {
            names.append(segments[index].name)
        }
        return names
    }
}
