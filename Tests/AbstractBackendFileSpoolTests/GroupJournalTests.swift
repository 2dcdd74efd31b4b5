import AbstractBackend
@testable import AbstractBackendFileSpool
import Foundation
import Logging
import TestSupport
import XCTest

/// A group's journal shared by several owners (separate opens, like separate processes): they see
/// each other's events, agree on where the group starts, survive compaction and a torn tail.
final class GroupJournalTests: XCTestCase {
    private var directory: String!
    private let logs = CapturedLogs()
    private let group = try! ConsumerGroup("billing")

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-group-\(UUID().uuidString)").path
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(atPath: directory)
    }

    private func open(startCursor: UInt64 = 1, compactionThreshold: Int = 4 << 20) throws -> GroupJournal {
        try GroupJournal(directory: directory, group: group, startCursor: startCursor, compactionThreshold: compactionThreshold, logger: logs.logger())
    }

    private func deliver(_ sequences: ClosedRange<UInt64>, owner: UInt64, on journal: GroupJournal) throws {
        try journal.update { _ throws(MessageQueueError) in
            (sequences.map { GroupEvent.delivered(sequence: $0, deliveryCount: 1, deadline: 1_000, owner: owner) }, ())
        }
    }

    func testOwnersSeeEachOthersEvents() throws {
        let first = try open()
        let second = try open()
        try deliver(1...3, owner: 1, on: first)
        let seen = try second.read()
        XCTAssertEqual(seen.cursor, 4)
        XCTAssertEqual(Set(seen.pending.keys), [1, 2, 3])
        try second.update { _ throws(MessageQueueError) in ([.acknowledged(sequence: 2), .released(sequence: 3, due: 5, reason: "later")], ()) }
        let back = try first.read()
        XCTAssertEqual(Set(back.pending.keys), [1])
        XCTAssertEqual(back.released[3]?.reason, "later")
        XCTAssertEqual(back, try second.read())
        XCTAssertEqual(String(decoding: try Data(contentsOf: URL(fileURLWithPath: directory + "/name")), as: UTF8.self), "billing")
    }

    func testTheFirstOpenDecidesWhereTheGroupStarts() throws {
        _ = try open(startCursor: 5)
        let later = try open(startCursor: 9)
        XCTAssertEqual(try later.read().cursor, 5, "a group starts where it was created, whoever opens it later")
    }

    func testCompactionKeepsTheStateForEveryOwner() throws {
        let first = try open(compactionThreshold: 400)
        let second = try open(compactionThreshold: 400)
        for round in UInt64(0)..<40 {
            let writer = round % 2 == 0 ? first : second
            try deliver((round * 3 + 1)...(round * 3 + 3), owner: round, on: writer)
            try writer.update { _ throws(MessageQueueError) in ([.acknowledged(sequence: round * 3 + 2)], ()) }
        }
        let snapshot = [UInt8](try Data(contentsOf: URL(fileURLWithPath: directory + "/snapshot")))
        let generation = try snapshot.withUnsafeBytes { try SegmentFormat.parseHeader($0) }
        XCTAssertGreaterThan(generation, 3, "the journal was compacted several times")
        let expected = try first.read()
        XCTAssertEqual(try second.read(), expected)
        XCTAssertEqual(try open().read(), expected, "a newcomer loads the same state")
        XCTAssertEqual(expected.cursor, 121)
        XCTAssertEqual(expected.pending.count, 80)
        XCTAssertNil(expected.pending[2])
    }

    func testATornJournalTailIsDropped() throws {
        let journal = try open()
        try deliver(1...2, owner: 7, on: journal)
        let state = try journal.read()
        var partial: [UInt8] = []
        GroupEvent.acknowledged(sequence: 1).encoded.withUnsafeBytes {
            SegmentFormat.appendRecord(sequence: 3, publishedAtMilliseconds: 0, payload: $0, to: &partial)
        }
        let handle = try XCTUnwrap(FileHandle(forWritingAtPath: directory + "/journal"))
        handle.seekToEndOfFile()
        handle.write(Data(partial.dropLast(3)))
        try handle.close()

        let reopened = try open()
        XCTAssertEqual(try reopened.read(), state, "the unfinished acknowledgement never happened")
        try reopened.update { _ throws(MessageQueueError) in ([.acknowledged(sequence: 1)], ()) }
        XCTAssertEqual(Set(try open().read().pending.keys), [2])
    }
}
