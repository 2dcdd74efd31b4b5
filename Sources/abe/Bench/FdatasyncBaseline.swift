import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The baseline of the file spool's durable publishes: what the disk itself sustains for "append a
/// record and wait until it is on disk", one record at a time.
///
/// One thread appends 4 KiB records to a new file with `pwrite` and calls `fdatasync` after each,
/// for `records` records or until `timeLimit` has passed, whichever comes first. The file lives in
/// the directory the spool scenarios use (same file system, same device) and is removed afterwards.
/// It runs on a thread of its own, not on the cooperative pool, because every call blocks.
enum FdatasyncBaseline {
    static let recordBytes = 4096

    static func publish(directory: String, records: Int, timeLimit: Duration = .seconds(5)) async throws -> BenchResult {
        let path = directory + "/fdatasync-baseline"
        let outcome: Result<(seconds: Double, latencies: [Int64]), BaselineError> = await withCheckedContinuation { continuation in
            let thread = Thread {
                continuation.resume(returning: run(path: path, records: records, timeLimit: timeLimit))
            }
            thread.name = "abe-bench-fdatasync"
            thread.start()
        }
        var (seconds, latencies) = try outcome.get()
        return BenchResult(
            backend: "fdatasync", scenario: "publish", messages: latencies.count, payloadBytes: recordBytes,
            seconds: seconds, latency: LatencySummary(nanoseconds: &latencies)
        )
    }

    struct BaselineError: Error, CustomStringConvertible {
        var description: String
    }

    private static func run(path: String, records: Int, timeLimit: Duration) -> Result<(seconds: Double, latencies: [Int64]), BaselineError> {
        func failure(_ call: String) -> BaselineError {
            BaselineError(description: "fdatasync baseline: \(call) failed for \(path): \(String(cString: strerror(errno)))")
        }
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else { return .failure(failure("open")) }
        defer {
            _ = close(descriptor)
            _ = unlink(path)
        }
        let record = [UInt8](repeating: UInt8(ascii: "x"), count: recordBytes)
        let limit = Int64(timeLimit.components.seconds) * 1_000_000_000 + timeLimit.components.attoseconds / 1_000_000_000
        var latencies = [Int64]()
        latencies.reserveCapacity(records)
        let start = BenchMessages.now()
        var end = start
        for index in 0..<records {
            let before = end
            let written = record.withUnsafeBytes { bytes in
                pwrite(descriptor, bytes.baseAddress, recordBytes, off_t(index * recordBytes))
            }
            guard written == recordBytes else { return .failure(failure("pwrite")) }
            guard fdatasync(descriptor) == 0 else { return .failure(failure("fdatasync")) }
            end = BenchMessages.now()
            latencies.append(end - before)
            if end - start >= limit { break }
        }
        return .success((Double(end - start) / 1e9, latencies))
    }
}
