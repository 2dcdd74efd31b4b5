@testable import AbstractBackendFileSpool
import Foundation
import XCTest

/// The segment format and its recovery scan on real files: intact segments read back exactly, a
/// torn tail is found, and a damaged record in the middle is skipped without losing the others.
final class SegmentScanTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-segment-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: directory)
    }

    /// A segment of `count` records with sequences from `first`, written to a file and read back.
    private func writeSegment(first: UInt64 = 1, count: Int) throws -> (url: URL, payloads: [[UInt8]]) {
        var bytes = SegmentFormat.header(firstSequence: first)
        var payloads: [[UInt8]] = []
        for index in 0..<count {
            let payload = Array(#"{"n":\#(index),"text":"record \#(index) 🦊"}"#.utf8)
            payloads.append(payload)
            payload.withUnsafeBytes {
                SegmentFormat.appendRecord(sequence: first + UInt64(index), publishedAtMilliseconds: 1_700_000_000_000 + Int64(index), payload: $0, to: &bytes)
            }
        }
        let url = directory.appendingPathComponent("\(first).seg")
        try Data(bytes).write(to: url)
        return (url, payloads)
    }

    private func scan(_ url: URL, lastSequence: UInt64 = 0) throws -> (SegmentScan, [UInt8]) {
        let bytes = [UInt8](try Data(contentsOf: url))
        let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: lastSequence) }
        return (scan, bytes)
    }

    func testIntactSegmentReadsBackExactly() throws {
        let (url, payloads) = try writeSegment(first: 41, count: 100)
        let (scan, bytes) = try scan(url, lastSequence: 40)
        XCTAssertEqual(bytes.withUnsafeBytes { try? SegmentFormat.parseHeader($0) }, 41)
        XCTAssertEqual(scan.records.map(\.sequence), Array(41...140))
        XCTAssertEqual(scan.records.map { Array(bytes[$0.payloadRange]) }, payloads)
        XCTAssertEqual(scan.records.first?.publishedAtMilliseconds, 1_700_000_000_000)
        XCTAssertTrue(scan.damaged.isEmpty)
        XCTAssertEqual(scan.intactEnd, bytes.count)
    }

    func testTornTailIsFoundAtEveryCutPoint() throws {
        let (url, _) = try writeSegment(count: 5)
        let full = [UInt8](try Data(contentsOf: url))
        let lastStart = try scan(url).0.records[3].range.upperBound
        // Every way the last record can be cut short by a crash.
        for cut in lastStart..<full.count {
            let torn = Array(full[..<cut])
            let scan = torn.withUnsafeBytes { SegmentScan($0, lastSequence: 0) }
            XCTAssertEqual(scan.records.map(\.sequence), [1, 2, 3, 4], "cut at \(cut)")
            XCTAssertEqual(scan.intactEnd, lastStart, "cut at \(cut)")
            XCTAssertTrue(scan.damaged.isEmpty, "a torn tail is not damage in the middle (cut at \(cut))")
        }
    }

    func testFlippedByteInTheMiddleSkipsOnlyThatRecord() throws {
        let (url, payloads) = try writeSegment(count: 50)
        let original = [UInt8](try Data(contentsOf: url))
        let victim = try scan(url).0.records[20]
        // A flip in each part of the record: length, checksum, sequence, time, payload.
        for position in [victim.range.lowerBound, victim.range.lowerBound + 5, victim.range.lowerBound + 9, victim.range.lowerBound + 17, victim.payloadRange.lowerBound + 3] {
            var bytes = original
            bytes[position] ^= 0x40
            let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: 0) }
            XCTAssertEqual(scan.records.map(\.sequence), Array(1...20) + Array(22...50), "flip at \(position)")
            XCTAssertEqual(scan.damaged, [victim.range], "flip at \(position)")
            XCTAssertEqual(scan.intactEnd, bytes.count)
            let delivered = scan.records.map { Array(bytes[$0.payloadRange]) }
            XCTAssertEqual(delivered, Array(payloads[0..<20] + payloads[21...]), "no garbled payload is delivered")
        }
    }

    func testGarbageAppendedIsATail() throws {
        let (url, _) = try writeSegment(count: 10)
        var bytes = [UInt8](try Data(contentsOf: url))
        let end = bytes.count
        bytes += Array("garbage that is not a record at all, long enough to look like one".utf8)
        let scan = bytes.withUnsafeBytes { SegmentScan($0, lastSequence: 0) }
        XCTAssertEqual(scan.records.count, 10)
        XCTAssertEqual(scan.intactEnd, end)
        XCTAssertTrue(scan.damaged.isEmpty)
    }

    func testDamagedHeaderIsRefusedWithAReason() throws {
        let (url, _) = try writeSegment(count: 1)
        var bytes = [UInt8](try Data(contentsOf: url))
        bytes[17] ^= 1
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try SegmentFormat.parseHeader($0) }) { error in
            XCTAssertEqual(error as? SegmentFormat.HeaderProblem, .checksumMismatch)
        }
        bytes = Array("NOTASEGMENT-----------------------------".utf8)
        XCTAssertThrowsError(try bytes.withUnsafeBytes { try SegmentFormat.parseHeader($0) }) { error in
            XCTAssertEqual(error as? SegmentFormat.HeaderProblem, .badMagic)
        }
    }
}
