/// The bytes of a segment file: a versioned header, then records back to back.
///
/// All integers are little-endian. docs/file-spool-format.md is the normative description; this
/// type is its implementation, so the two change together.
///
/// ```text
/// header (32 bytes)
///   0  8  magic "ABESPOOL"
///   8  2  format version (1)
///  10  2  header length (32)
///  12  4  flags (0)
///  16  8  sequence of the segment's first record
///  24  4  reserved (0)
///  28  4  CRC-32C of bytes 0..<28
/// record (24 bytes + payload)
///   0  4  payload length
///   4  4  CRC-32C of bytes 0..<4, then 8..<24, then the payload
///   8  8  sequence (the previous record's + 1)
///  16  8  publish time, milliseconds since the Unix epoch (signed)
///  24  …  payload: the message's JSON object, UTF-8
/// ```
enum SegmentFormat {
    static let magic: [UInt8] = Array("ABESPOOL".utf8)
    static let version: UInt16 = 1
    static let headerLength = 32
    static let recordHeaderLength = 24
    /// The largest payload a record may hold. A length field above it is corruption, which also
    /// bounds how far a damaged length can send the reader.
    static let maximumPayloadLength = 64 << 20

    /// The header of a segment whose first record has sequence `firstSequence`.
    static func header(firstSequence: UInt64) -> [UInt8] {
        var bytes = magic
        bytes.reserveCapacity(headerLength)
        appendLittleEndian(version, to: &bytes)
        appendLittleEndian(UInt16(headerLength), to: &bytes)
        appendLittleEndian(UInt32(0), to: &bytes)
        appendLittleEndian(firstSequence, to: &bytes)
        appendLittleEndian(UInt32(0), to: &bytes)
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        appendLittleEndian(crc, to: &bytes)
        return bytes
    }

    /// Why a segment header is unusable.
    enum HeaderProblem: Error, Equatable, CustomStringConvertible {
        case tooShort
        case badMagic
        case unsupportedVersion(UInt16)
        case checksumMismatch

        var description: String {
            switch self {
            case .tooShort: return "the file is shorter than a segment header"
            case .badMagic: return "the file does not start with \"ABESPOOL\""
            case .unsupportedVersion(let version): return "segment format version \(version) is not supported (this build reads version \(SegmentFormat.version))"
            case .checksumMismatch: return "the segment header's checksum does not match"
            }
        }
    }

    /// The first sequence recorded in a segment header.
    static func parseHeader(_ bytes: UnsafeRawBufferPointer) throws(HeaderProblem) -> UInt64 {
        guard bytes.count >= headerLength else { throw .tooShort }
        guard bytes.prefix(magic.count).elementsEqual(magic) else { throw .badMagic }
        let version = readLittleEndian(UInt16.self, bytes, at: 8)
        guard version == Self.version else { throw .unsupportedVersion(version) }
        let stored = readLittleEndian(UInt32.self, bytes, at: 28)
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: bytes[0..<28])) == stored else { throw .checksumMismatch }
        return readLittleEndian(UInt64.self, bytes, at: 16)
    }

    /// Appends one record to `buffer`.
    static func appendRecord(sequence: UInt64, publishedAtMilliseconds: Int64, payload: UnsafeRawBufferPointer, to buffer: inout [UInt8]) {
        let start = buffer.count
        appendLittleEndian(UInt32(payload.count), to: &buffer)
        appendLittleEndian(UInt32(0), to: &buffer)
        appendLittleEndian(sequence, to: &buffer)
        appendLittleEndian(publishedAtMilliseconds, to: &buffer)
        buffer.append(contentsOf: payload)
        let crc = buffer.withUnsafeBytes { all in
            recordChecksum(UnsafeRawBufferPointer(rebasing: all[start...]), payloadLength: payload.count)
        }
        buffer.withUnsafeMutableBytes { all in
            all.storeBytes(of: crc.littleEndian, toByteOffset: start + 4, as: UInt32.self)
        }
    }

    /// The checksum of a record laid out in `record` (header and payload).
    static func recordChecksum(_ record: UnsafeRawBufferPointer, payloadLength: Int) -> UInt32 {
        let length = UnsafeRawBufferPointer(rebasing: record[0..<4])
        let rest = UnsafeRawBufferPointer(rebasing: record[8..<(recordHeaderLength + payloadLength)])
        return CRC32C.checksum(rest, continuing: CRC32C.checksum(length))
    }

    /// One record read back.
    struct Record {
        let sequence: UInt64
        let publishedAtMilliseconds: Int64
        /// Where the payload starts in the scanned bytes, and its length.
        let payloadRange: Range<Int>
        /// Where the record starts and ends (header included).
        let range: Range<Int>
    }

    /// Reads the record at `offset`: `nil` unless a whole, intact record starts there.
    static func record(in bytes: UnsafeRawBufferPointer, at offset: Int) -> Record? {
        guard offset >= 0, bytes.count - offset >= recordHeaderLength else { return nil }
        let length = Int(readLittleEndian(UInt32.self, bytes, at: offset))
        guard length <= maximumPayloadLength, bytes.count - offset - recordHeaderLength >= length else { return nil }
        let end = offset + recordHeaderLength + length
        let stored = readLittleEndian(UInt32.self, bytes, at: offset + 4)
        guard recordChecksum(UnsafeRawBufferPointer(rebasing: bytes[offset..<end]), payloadLength: length) == stored else { return nil }
        return Record(
            sequence: readLittleEndian(UInt64.self, bytes, at: offset + 8),
            publishedAtMilliseconds: readLittleEndian(Int64.self, bytes, at: offset + 16),
            payloadRange: (offset + recordHeaderLength)..<end,
            range: offset..<end
        )
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to buffer: inout [UInt8]) {
        withUnsafeBytes(of: value.littleEndian) { buffer.append(contentsOf: $0) }
    }

    static func readLittleEndian<T: FixedWidthInteger>(_ type: T.Type, _ bytes: UnsafeRawBufferPointer, at offset: Int) -> T {
        T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
