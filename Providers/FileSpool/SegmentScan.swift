/// What a full read of one segment found: its intact records, the damaged stretches between them,
/// and where the intact data ends.
///
/// Recovery uses it to tell the two kinds of damage apart. Bytes that do not form an intact record
/// but are followed by one are corruption inside the segment (a flipped bit, a bad sector): they
/// are reported and skipped, and every other record is still delivered. Bytes after the last
/// intact record are a torn tail — a write the crash interrupted — and are truncated, since no
/// publish that returned can be in them.
struct SegmentScan {
    /// Every intact record, in file order.
    var records: [SegmentFormat.Record] = []
    /// Damaged byte ranges followed by intact records.
    var damaged: [Range<Int>] = []
    /// The offset just past the last intact record (or `start` when there is none).
    var intactEnd: Int

    /// Scans the records in `bytes` from offset `start` — by default a whole segment, header
    /// included. `lastSequence` is the sequence before the first record expected.
    init(_ bytes: UnsafeRawBufferPointer, from start: Int = SegmentFormat.headerLength, lastSequence: UInt64) {
        intactEnd = start
        var offset = start
        var last = lastSequence
        while offset < bytes.count {
            if let record = SegmentFormat.record(in: bytes, at: offset), record.sequence > last {
                records.append(record)
                last = record.sequence
                offset = record.range.upperBound
                intactEnd = offset
                continue
            }
            guard let next = Self.nextIntactRecord(in: bytes, after: offset, lastSequence: last) else { break }
            damaged.append(offset..<next)
            offset = next
        }
    }

    /// Searches byte by byte for the next intact record after damage at `offset`.
    ///
    /// A candidate must hold a sequence above `lastSequence` and within what the remaining bytes
    /// can hold, and pass its checksum. A JSON payload never contains the zero bytes a record
    /// header has, so a record header cannot be faked by payload text.
    private static func nextIntactRecord(in bytes: UnsafeRawBufferPointer, after offset: Int, lastSequence: UInt64) -> Int? {
        var candidate = offset + 1
        while bytes.count - candidate >= SegmentFormat.recordHeaderLength {
            let sequence = SegmentFormat.readLittleEndian(UInt64.self, bytes, at: candidate + 8)
            let room = UInt64((bytes.count - candidate) / SegmentFormat.recordHeaderLength)
            if sequence > lastSequence, sequence - lastSequence <= room,
               let record = SegmentFormat.record(in: bytes, at: candidate), record.sequence == sequence {
                return candidate
            }
            candidate += 1
        }
        return nil
    }
}
