import CCRC32C

/// CRC-32C (Castagnoli), the checksum of every spool record.
///
/// Castagnoli rather than the zlib CRC-32 because it detects more error patterns in short
/// records and is what other storage formats (iSCSI, ext4 metadata, LevelDB) use, so another
/// implementation of the format finds it everywhere. Parameters: reflected polynomial
/// `0x82F63B78`, initial value and final xor `0xFFFFFFFF`; `"123456789"` gives `0xE3069283`.
///
/// It runs on every record written and read, so it uses the processor's CRC-32C instruction
/// where there is one (SSE 4.2 on x86-64, the CRC extension on arm64; the `CCRC32C` target), and
/// otherwise slicing-by-8 in software (eight bytes per step through eight 256-entry tables,
/// several times faster than a byte at a time). Both give the same checksums. They chain like
/// zlib's `crc32`:
///
/// ```swift
/// let whole = CRC32C.checksum(header + payload)
/// let chained = CRC32C.checksum(payload, continuing: CRC32C.checksum(header))
/// // whole == chained
/// ```
enum CRC32C {
    /// Whether this processor has the CRC-32C instruction; checked once.
    static let hardware = abe_crc32c_hardware_available() != 0

    /// The reflected Castagnoli polynomial.
    static let polynomial: UInt32 = 0x82F6_3B78

    /// Eight tables of 256 entries, flattened so one buffer pointer reaches all of them.
    ///
    /// Table 0 advances the CRC over one byte; table `k` over that byte followed by `k` zero
    /// bytes, which lets one step fold eight input bytes with eight independent lookups.
    /// Built once, on first use.
    static let tables: [UInt32] = {
        var tables = [UInt32](repeating: 0, count: 8 * 256)
        for byte in 0..<256 {
            var crc = UInt32(byte)
            for _ in 0..<8 {
                crc = (crc >> 1) ^ (crc & 1 == 0 ? 0 : polynomial)
            }
            tables[byte] = crc
        }
        for table in 1..<8 {
            for byte in 0..<256 {
                let previous = tables[(table - 1) * 256 + byte]
                tables[table * 256 + byte] = (previous >> 8) ^ tables[Int(previous & 0xFF)]
            }
        }
        return tables
    }()

    /// The CRC-32C of `bytes`, or of the concatenation of earlier bytes and `bytes` when
    /// `continuing` is the checksum of those earlier bytes.
    ///
    /// The default `0` is the checksum of no bytes, so a chain starts like a one-shot call.
    static func checksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        guard hardware else { return softwareChecksum(bytes, continuing: previous) }
        // Undo the previous final xor to resume from the raw register.
        guard let start = bytes.baseAddress else { return previous }
        return ~abe_crc32c_hardware_update(~previous, start, bytes.count)
    }

    /// ``checksum(_:continuing:)`` without the processor's instruction: what runs where there is
    /// none, and what tests compare the instruction with.
    static func softwareChecksum(_ bytes: UnsafeRawBufferPointer, continuing previous: UInt32 = 0) -> UInt32 {
        // Undo the previous final xor to resume from the raw register.
        var crc = ~previous
        tables.withUnsafeBufferPointer { table in
            var offset = 0
            let count = bytes.count
            while count - offset >= 8 {
                // Little-endian loads make the first input byte the low byte, as the reflected
                // CRC expects; loadUnaligned because records start at arbitrary offsets.
                let word = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
                let low = UInt32(truncatingIfNeeded: word) ^ crc
                let high = UInt32(truncatingIfNeeded: word >> 32)
                crc = table[7 * 256 + Int(low & 0xFF)]
                    ^ table[6 * 256 + Int((low >> 8) & 0xFF)]
                    ^ table[5 * 256 + Int((low >> 16) & 0xFF)]
                    ^ table[4 * 256 + Int(low >> 24)]
                    ^ table[3 * 256 + Int(high & 0xFF)]
                    ^ table[2 * 256 + Int((high >> 8) & 0xFF)]
                    ^ table[1 * 256 + Int((high >> 16) & 0xFF)]
                    ^ table[Int(high >> 24)]
                offset += 8
            }
            while offset < count {
                crc = (crc >> 8) ^ table[Int((crc ^ UInt32(bytes[offset])) & 0xFF)]
                offset += 1
            }
        }
        return ~crc
    }

    /// The CRC-32C of a byte collection (an array, `Data`, a UTF-8 view), chained like the
    /// buffer-pointer overload.
    ///
    /// Contiguous collections are read in place; any other collection is copied once first,
    /// because the fast loop needs contiguous memory.
    static func checksum(_ bytes: some Collection<UInt8>, continuing previous: UInt32 = 0) -> UInt32 {
        let inPlace = bytes.withContiguousStorageIfAvailable { buffer in
            checksum(UnsafeRawBufferPointer(buffer), continuing: previous)
        }
        return inPlace ?? Array(bytes).withUnsafeBytes { checksum($0, continuing: previous) }
    }
}
