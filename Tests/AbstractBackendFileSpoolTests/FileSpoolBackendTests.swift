import AbstractBackend
@testable import AbstractBackendFileSpool
import Foundation
import TestSupport
import XCTest

/// Behaviour of the file spool beyond the shared contract: retention by segment, damage
/// statistics, and the directory layout.
final class FileSpoolBackendTests: XCTestCase {
    private var root: String!
    private let logs = CapturedLogs()

    override func setUpWithError() throws {
        root = FileManager.default.temporaryDirectory.appendingPathComponent("abe-spool-backend-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: root)
    }

    private func makeBackend(segmentSize: Int = FileSpoolConfiguration.defaultSegmentSize) throws -> FileSpoolBackend {
        var configuration = FileSpoolConfiguration(directory: root)
        configuration.segmentSize = segmentSize
        // Written when `publish` returns (the tests look at the files), but not synced.
        configuration.fsync = .interval
        configuration.fsyncInterval = .seconds(60)
        return try FileSpoolBackend(configuration: configuration, logger: logs.logger())
    }

    private func segments(of key: MessageQueueKey) throws -> [String] {
        try SegmentLog.segmentNames(in: root + "/keys/" + SpoolNames.component(forKey: key))
    }

    /// Consumes `count` messages of `key` as `group`, acknowledging each, then keeps the
    /// iterator polling for `linger` so its retention passes run.
    private func consume(_ backend: FileSpoolBackend, key: MessageQueueKey, group: String, count: Int, linger: Duration = .zero) async throws -> [MessageQueueMessage] {
        let task = Task {
            var received: [MessageQueueMessage] = []
            if count > 0 {
                for try await message in backend.consume(keys: [key], group: try ConsumerGroup(group)) {
                    try await message.ack()
                    received.append(message)
                    if received.count == count { break }
                }
            }
            if linger > .zero {
                // Another round of claims, which is when retention runs.
                var iterator = backend.consume(keys: [key], group: try ConsumerGroup(group)).makeAsyncIterator()
                let lingering = Task { _ = try? await iterator.next() }
                try await Task.sleep(for: linger)
                lingering.cancel()
            }
            return received
        }
        return try await task.value
    }

    func testSegmentsAreDeletedOnlyOnceEveryGroupAcknowledgedThem() async throws {
        let backend = try makeBackend(segmentSize: 4096)
        let key = try MessageQueueKey("retained")
        for start in stride(from: 0, to: 400, by: 50) {
            try await backend.publish((start..<(start + 50)).map { (key: key, payload: ["n": .int(Int64($0)), "pad": "xxxxxxxxxxxxxxxxxxxxxxxx"]) })
        }
        let written = try segments(of: key)
        XCTAssertGreaterThan(written.count, 3)

        let first = try await consume(backend, key: key, group: "billing", count: 400)
        XCTAssertEqual(first.count, 400)
        // A second group exists and has read nothing.
        _ = try GroupJournal(directory: root + "/keys/retained/groups/audit", group: try ConsumerGroup("audit"), startCursor: 1, logger: logs.logger())
        _ = try await consume(backend, key: key, group: "billing", count: 0, linger: .milliseconds(1500))
        XCTAssertEqual(try segments(of: key), written, "nothing is deleted while another group has not acknowledged")

        let second = try await consume(backend, key: key, group: "audit", count: 400, linger: .milliseconds(1500))
        XCTAssertEqual(second.count, 400)
        XCTAssertEqual(try segments(of: key), Array(written.suffix(1)), "acknowledged by every group, all but the newest segment are deleted")
        await backend.close()
    }

    func testDamagedRecordIsCountedAndSkipped() async throws {
        let key = try MessageQueueKey("damaged")
        var backend = try makeBackend()
        try await backend.publish((0..<20).map { (key: key, payload: ["n": .int(Int64($0))]) })
        await backend.close()

        let path = root + "/keys/damaged/" + (try segments(of: key))[0]
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: 0) }
        bytes[scan.records[9].payloadRange.lowerBound + 2] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))

        backend = try makeBackend()
        let received = try await consume(backend, key: key, group: "readers", count: 19)
        XCTAssertEqual(received.map(\.id), (1...20).filter { $0 != 10 }.map(String.init))
        XCTAssertEqual(backend.statistics.damagedRecords, 1)
        XCTAssertTrue(logs.records.contains { $0.level == .error && $0.message.contains("damaged record") })
        await backend.close()
    }
}
