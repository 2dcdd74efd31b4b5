import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scenario 4: the file spool's crash loop (as in CrashLoopTests): `abe-spool-worker` publishers
/// killed with SIGKILL at random moments of their writes, while a consumer process reads the key
/// live. Every publish that returned must be delivered, nothing garbled or unpublished may be.
struct SpoolWriterKills {
    static let key = "crash"
    /// Publisher `i` publishes numbers from `i * stride`.
    static let stride = 1_000_000
    /// Padding per publisher, in turn: with 4 KiB segments a padded record starts a new segment
    /// every time, and 256 KiB records span many pages, so kills land in the middle of creating a
    /// segment and of writing a record.
    static let pads = [0, 8 << 10, 256 << 10]

    let kills: Int
    let directory: String

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        let live = try fleet.start(Fleet.spoolWorker, ["consume", directory, Self.key, "live", "30000"])
        try await live.waitUntilReady()
        var publications: [Publication] = []
        var killedBeforeFirstAck = 0
        for iteration in 0..<kills {
            let first = iteration * Self.stride
            let writer = try fleet.start(Fleet.spoolWorker, [
                "publish", directory, Self.key, "\(first)", "\(Self.stride)",
                "--fsync", "always", "--segment-bytes", "4096", "--pad", "\(Self.pads[iteration % Self.pads.count])",
            ])
            try await writer.waitUntilReady()
            // From "ready" on, the writer opens (and repairs) the key's log and publishes.
            try await Task.sleep(for: .microseconds(Int.random(in: 0...60_000)))
            writer.kill(SIGKILL)
            let end = await writer.waitForExit()
            outcome.check(end == .signalled(SIGKILL), "a writer ended before the kill: \(writer.summary)")
            outcome.kills += 1
            let publication = Publication(first: first, count: Self.stride, lines: WorkerLines(writer.lines))
            if publication.lines.acked.isEmpty { killedBeforeFirstAck += 1 }
            publications.append(publication)
        }
        let acked = Set(publications.flatMap(\.lines.acked))
        let complete = await waitUntilProcessed(acked, by: { [live] }, timeout: .seconds(60))
        outcome.check(complete, "the live consumer did not get every acknowledged message within 60 s")
        // Time for anything that should not come (a repeat, a garbled record) to show.
        try await Task.sleep(for: .seconds(1))
        outcome.failures += await fleet.stop([live])

        let report = WorkerLines(live.lines)
        outcome.counters = Counters(publications: publications, processed: report.processed, bad: report.bad)
        outcome.notes.append(
            "\(outcome.kills) writers killed (\(killedBeforeFirstAck) before their first acknowledged publish); "
                + "consumer never killed, so no duplicates are allowed"
        )
        outcome.failures += logLines(live.errorText, level: "error").map { "the live consumer logged an error: \($0)" }
    }
}
