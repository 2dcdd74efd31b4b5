import Synchronization

/// What a file-spool backend has found wrong on disk since it was opened.
///
/// Damage is never silent: each damaged record and each torn tail is also logged, with the file
/// and the byte range.
public struct FileSpoolStatistics: Sendable, Hashable {
    /// Times a consumer of this backend met a damaged record and skipped it (each is also logged
    /// as an error). Two consumers reading the same damaged record count it twice.
    public var damagedRecords: Int
    /// Bytes of torn tails (writes a crash interrupted) this backend's writer truncated, when it
    /// opened a log or found one another process left.
    public var truncatedBytes: Int
    /// Messages whose `publish` had returned under `ABE_SPOOL_FSYNC=never` but that could not be
    /// written (each failure is also logged, and the backend refuses later publishes). Always 0
    /// under `always` and `interval`, where `publish` itself reports the failure.
    public var lostMessages: Int
}

/// The counters behind ``FileSpoolStatistics``, shared by the backend's threads.
final class SpoolCounters: Sendable {
    let damagedRecords = Atomic<Int>(0)
    let truncatedBytes = Atomic<Int>(0)
    let lostMessages = Atomic<Int>(0)

    var snapshot: FileSpoolStatistics {
        FileSpoolStatistics(
            damagedRecords: damagedRecords.load(ordering: .relaxed), truncatedBytes: truncatedBytes.load(ordering: .relaxed),
            lostMessages: lostMessages.load(ordering: .relaxed)
        )
    }
}
