/// Finds, eight bytes at a time, where a run of plain string bytes ends: the next byte that a JSON
/// string cannot hold as is (`"`, `\`, a control character) or that starts a multi-byte UTF-8
/// sequence (0x80 and above), which the reader validates and the writer copies byte by byte.
///
/// Payload strings are mostly long plain runs; testing a word per step instead of a byte makes
/// reading and writing them several times cheaper.
enum JSONStringScan {
    private static let ones: UInt64 = 0x0101_0101_0101_0101
    private static let highBits: UInt64 = 0x8080_8080_8080_8080

    /// The index of the first byte of `bytes[start...]` that is `"`, `\`, below 0x20, or (when
    /// `stopAtNonASCII`) 0x80 and above; `bytes.count` when there is none.
    @inline(__always)
    static func endOfPlainRun(in bytes: UnsafeBufferPointer<UInt8>, from start: Int, stopAtNonASCII: Bool) -> Int {
        guard let base = bytes.baseAddress else { return start }
        let end = bytes.count
        var index = start
        while index + 8 <= end {
            // Little-endian order on every platform: the first byte is the least significant.
            let word = UInt64(littleEndian: UnsafeRawPointer(base + index).loadUnaligned(as: UInt64.self))
            // A byte's high bit in each mask is set where that byte matches. Borrows only run
            // towards more significant bytes, so the lowest set bit (the first match) is exact.
            let control = (word &- ones &* 0x20) & ~word & highBits
            let quotes = word ^ (ones &* 0x22)
            let quote = (quotes &- ones) & ~quotes & highBits
            let backslashes = word ^ (ones &* 0x5C)
            let backslash = (backslashes &- ones) & ~backslashes & highBits
            var found = control | quote | backslash
            if stopAtNonASCII { found |= word & highBits }
            if found != 0 { return index + found.trailingZeroBitCount / 8 }
            index += 8
        }
        while index < end {
            let byte = base[index]
            if byte < 0x20 || byte == 0x22 || byte == 0x5C || (stopAtNonASCII && byte >= 0x80) { return index }
            index += 1
        }
        return end
    }
}
