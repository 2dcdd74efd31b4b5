import AbstractBackend
import AbstractBackendFileSpool
import Foundation
import Synchronization
import TestSupport
import XCTest

/// What `ABE_SPOOL_FSYNC=never` promises now that `publish` returns before the write, checked
/// with real processes: a normal exit writes everything that was published, and a write that
/// fails after its publishers returned is reported and stops further publishing.
final class NeverPolicyTests: SpoolWorkerTestCase {
    func testANormalExitWithoutCloseWritesEveryPublishedMessage() async throws {
        let count = 20_000
        let worker = try startWorker(["publish", spoolDirectory, "exit", "0", "\(count)", "--fsync", "never", "--close", "no"])
        let end = await worker.waitForExit(timeout: .seconds(60))
        XCTAssertEqual(end, .exited(0), worker.summary)
        XCTAssertEqual(worker.lines.last, "exiting", worker.summary)
        XCTAssertEqual(Self.acked(worker.lines), Array(0..<count))

        let stored = try await numbers(in: "exit")
        XCTAssertEqual(stored.count, count, "the spool holds \(stored.count) of the \(count) messages whose publish returned")
        XCTAssertNil(Self.firstDifference(stored, from: 0..<count), "the messages are not exactly the published ones, in order")
    }

    func testAWriteFailingAfterPublishReturnedIsReportedAndStopsPublishing() async throws {
        let limit = 64 << 10
        let worker = try startWorker([
            "publish", spoolDirectory, "full", "0", "100000", "--fsync", "never", "--file-size-limit", "\(limit)",
        ])
        let end = await worker.waitForExit(timeout: .seconds(60))
        XCTAssertEqual(end, .exited(1), worker.summary)
        let failure = worker.lines.last?.split(separator: " ") ?? []
        guard failure.count == 4, failure[0] == "failed", failure[2] == "lost", let failedAt = Int(failure[1]), let lost = Int(failure[3]) else {
            return XCTFail("the worker's last line is not `failed <n> lost <count>`: \(worker.summary)")
        }
        let acked = Self.acked(worker.lines)
        XCTAssertEqual(acked, Array(0..<failedAt))
        XCTAssertGreaterThanOrEqual(lost, 1, "statistics.lostMessages does not count the messages that could not be written")
        XCTAssertTrue(worker.errorText.contains("could not be written"), "the publish error does not say what happened: \(worker.summary)")
        XCTAssertTrue(worker.errorText.contains("lost"), worker.summary)

        // What reached the file is a prefix of what was published, every record whole: the write
        // that failed may have left part of a record, which reopening truncates.
        let files = try FileManager.default.contentsOfDirectory(atPath: keyDirectory("full")).filter { $0.hasSuffix(".seg") }
        for file in files {
            let size = try FileManager.default.attributesOfItem(atPath: keyDirectory("full") + "/" + file)[.size] as? Int ?? 0
            XCTAssertLessThanOrEqual(size, limit, "\(file) grew past RLIMIT_FSIZE")
        }
        let stored = try await numbers(in: "full")
        XCTAssertLessThan(stored.count, acked.count, "every message whose publish returned was written, so nothing was lost and the test proves nothing")
        XCTAssertNil(Self.firstDifference(stored, from: 0..<stored.count), "the spool holds messages that are not a prefix of those published")
    }

    /// Where `stored` first differs from `expected`, described; `nil` when they are equal.
    private static func firstDifference(_ stored: [Int], from expected: Range<Int>) -> String? {
        for (index, (got, wanted)) in zip(stored, expected).enumerated() where got != wanted {
            return "position \(index) holds \(got), not \(wanted)"
        }
        return stored.count == expected.count ? nil : "\(stored.count) messages, not \(expected.count)"
    }

    /// The `n` of every message of `key`, in delivery order, consumed as a fresh group until
    /// none arrives for half a second.
    private func numbers(in key: String) async throws -> [Int] {
        let backend = try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: spoolDirectory))
        let received = Mutex<[Int]>([])
        let consuming = Task {
            for try await message in backend.consume(keys: [try MessageQueueKey(key)], group: try ConsumerGroup("verify")) {
                let n = message.payload["n"]?.intValue.map(Int.init) ?? -1
                received.withLock { $0.append(n) }
                try await message.ack()
            }
        }
        var lastCount = -1
        var quietSince = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(50))
            let count = received.withLock { $0.count }
            if count != lastCount {
                lastCount = count
                quietSince = ContinuousClock.now
            } else if ContinuousClock.now - quietSince >= .milliseconds(500) {
                break
            }
        }
        consuming.cancel()
        if case .failure(let error) = await consuming.result, !(error is CancellationError) {
            XCTFail("consuming failed: \(error)")
        }
        XCTAssertEqual(backend.statistics.damagedRecords, 0, "a record in the spool is damaged")
        await backend.close()
        return received.withLock { $0 }
    }
}
