@testable import AbstractBackendFileSpool
import Foundation
import Logging
import TestSupport
import XCTest

/// One key's segment log on a real filesystem: appends, reopening, recovery of a torn tail,
/// segment rollover, and two writers sharing the log through `flock`.
final class SegmentLogTests: XCTestCase {
    private var directory: String!
    private let logs = CapturedLogs()

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-log-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func open(segmentLimit: Int = 64 << 20) throws -> SegmentLog {
        try SegmentLog(directory: directory, segmentLimit: segmentLimit, logger: logs.logger())
    }

    private func entries(_ range: Range<Int>) -> [SegmentLog.Entry] {
        range.map { SegmentLog.Entry(json: Array(#"{"n":\#($0)}"#.utf8), publishedAtMilliseconds: Int64($0)) }
    }

    /// Every record of every segment, in order, as (sequence, payload text).
    private func allRecords() throws -> [(UInt64, String)] {
        var records: [(UInt64, String)] = []
        for name in try SegmentLog.segmentNames(in: directory) {
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name)))
            let first = try bytes.withUnsafeBytes { try SegmentFormat.parseHeader($0) }
            let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: first - 1) }
            XCTAssertTrue(scan.damaged.isEmpty, "\(name) has damaged records")
            XCTAssertEqual(scan.intactEnd, bytes.count, "\(name) has a tail")
            records += scan.records.map { ($0.sequence, String(decoding: bytes[$0.payloadRange], as: UTF8.self)) }
        }
        return records
    }

    func testAppendsContinueAcrossReopening() throws {
        var log = try open()
        XCTAssertEqual(log.lastSequence, 0)
        XCTAssertEqual(try log.append(entries(0..<3)), 1...3)
        try log.sync()
        log = try open()
        XCTAssertEqual(log.lastSequence, 3)
        XCTAssertEqual(log.recovery, SegmentLog.Recovery())
        XCTAssertEqual(try log.append(entries(3..<5)), 4...5)
        XCTAssertEqual(try allRecords().map(\.0), [1, 2, 3, 4, 5])
        XCTAssertEqual(try allRecords().map(\.1).last, #"{"n":4}"#)
    }

    func testReopeningTruncatesATornTail() throws {
        let log = try open()
        _ = try log.append(entries(0..<10))
        try log.sync()
        let segment = directory + "/" + (try SegmentLog.segmentNames(in: directory)[0])
        let intactSize = try FileManager.default.attributesOfItem(atPath: segment)[.size] as! Int
        // Half of an eleventh record, as a crash in the middle of a write leaves it.
        var partial: [UInt8] = []
        Array(#"{"n":10,"text":"never finished"}"#.utf8).withUnsafeBytes {
            SegmentFormat.appendRecord(sequence: 11, publishedAtMilliseconds: 0, payload: $0, to: &partial)
        }
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: segment))
        handle.seekToEndOfFile()
        handle.write(Data(partial.prefix(partial.count / 2)))
        try handle.close()

        let reopened = try open()
        XCTAssertEqual(reopened.lastSequence, 10)
        XCTAssertEqual(reopened.recovery.truncatedBytes, partial.count / 2)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: segment)[.size] as? Int, intactSize)
        XCTAssertTrue(logs.records.contains { $0.level == .warning && $0.message.contains("torn tail") })
        XCTAssertEqual(try reopened.append(entries(10..<11)), 11...11)
        XCTAssertEqual(try allRecords().map(\.0), Array(1...11))
    }

    func testFullSegmentsRollOverInOrder() throws {
        let log = try open(segmentLimit: 512)
        for start in stride(from: 0, to: 100, by: 5) {
            _ = try log.append(entries(start..<(start + 5)))
        }
        try log.sync()
        let names = try SegmentLog.segmentNames(in: directory)
        XCTAssertGreaterThan(names.count, 5)
        XCTAssertEqual(names.first, "00000000000000000001.seg")
        let records = try allRecords()
        XCTAssertEqual(records.map(\.0), Array(1...100))
        XCTAssertEqual(records.map(\.1), (0..<100).map { #"{"n":\#($0)}"# })
        XCTAssertEqual(try open(segmentLimit: 512).lastSequence, 100)
    }

    func testTwoWritersShareTheLogWithoutGapsOrDuplicates() throws {
        // Two opens of the same directory hold separate `flock` descriptions, like two processes.
        let first = try open(segmentLimit: 4096)
        let second = try open(segmentLimit: 4096)
        var ranges: [ClosedRange<UInt64>] = []
        for round in 0..<40 {
            let writer = round % 3 == 0 ? second : first
            ranges.append(try writer.append(entries((round * 4)..<(round * 4 + 4))))
        }
        XCTAssertEqual(ranges.flatMap { Array($0) }, Array(1...160), "sequences are handed out once each, in order")
        XCTAssertEqual(try allRecords().map(\.0), Array(1...160))
    }
}
