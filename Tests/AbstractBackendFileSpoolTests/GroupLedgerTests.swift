@testable import AbstractBackendFileSpool
import XCTest

/// The group state machine that every consuming process rebuilds from the journal.
final class GroupLedgerTests: XCTestCase {
    func testNewMessagesAreDueFromTheCursorAndDeliveryMovesIt() {
        var ledger = GroupLedger(cursor: 5)
        XCTAssertEqual(ledger.due(now: 0, lastSequence: 4, limit: 10), [], "nothing published past the cursor")
        XCTAssertEqual(ledger.due(now: 0, lastSequence: 7, limit: 2).map(\.sequence), [5, 6])
        ledger.apply(.delivered(sequence: 5, deliveryCount: 1, deadline: 100, owner: 1))
        ledger.apply(.delivered(sequence: 6, deliveryCount: 1, deadline: 100, owner: 2))
        XCTAssertEqual(ledger.cursor, 7)
        XCTAssertEqual(ledger.due(now: 50, lastSequence: 7, limit: 10), [GroupLedger.Due(sequence: 7, deliveryCount: 1, lastError: nil)])
        XCTAssertEqual(ledger.floor, 5)
    }

    func testFloorRisesOnlyOverAcknowledgedMessages() {
        var ledger = GroupLedger(cursor: 1)
        for sequence in UInt64(1)...4 { ledger.apply(.delivered(sequence: sequence, deliveryCount: 1, deadline: 100, owner: 1)) }
        ledger.apply(.acknowledged(sequence: 2))
        ledger.apply(.acknowledged(sequence: 3))
        XCTAssertEqual(ledger.floor, 1, "message 1 is still pending")
        ledger.apply(.acknowledged(sequence: 1))
        XCTAssertEqual(ledger.floor, 4)
        ledger.apply(.acknowledged(sequence: 4))
        XCTAssertEqual(ledger.floor, 5)
        XCTAssertTrue(ledger.pending.isEmpty)
    }

    func testExpiredAndReleasedMessagesComeBackFirstWithTheNextCount() {
        var ledger = GroupLedger(cursor: 1)
        for sequence in UInt64(1)...3 { ledger.apply(.delivered(sequence: sequence, deliveryCount: 1, deadline: 100, owner: 1)) }
        ledger.apply(.released(sequence: 3, due: 60, reason: "boom"))
        XCTAssertEqual(ledger.due(now: 50, lastSequence: 4, limit: 10).map(\.sequence), [4], "nothing is due again yet")
        XCTAssertEqual(ledger.due(now: 60, lastSequence: 4, limit: 10), [
            GroupLedger.Due(sequence: 3, deliveryCount: 2, lastError: "boom"),
            GroupLedger.Due(sequence: 4, deliveryCount: 1, lastError: nil),
        ])
        XCTAssertEqual(ledger.due(now: 100, lastSequence: 4, limit: 3).map(\.sequence), [1, 2, 3], "held past the deadline, oldest first")
        XCTAssertEqual(ledger.nextDeadline, 60)
        ledger.apply(.delivered(sequence: 3, deliveryCount: 2, deadline: 200, owner: 2))
        XCTAssertNil(ledger.released[3])
        XCTAssertEqual(ledger.pending[3], GroupLedger.Holding(deliveryCount: 2, deadline: 200, owner: 2))
    }

    func testReturnedMessagesAreDueAtOnceWithoutCountingADelivery() {
        var ledger = GroupLedger(cursor: 1)
        ledger.apply(.delivered(sequence: 1, deliveryCount: 1, deadline: 100, owner: 1))
        ledger.apply(.delivered(sequence: 2, deliveryCount: 3, deadline: 100, owner: 1))
        ledger.apply(.returned(sequence: 1))
        ledger.apply(.returned(sequence: 2))
        XCTAssertEqual(ledger.due(now: 0, lastSequence: 2, limit: 10).map(\.deliveryCount), [1, 3])
    }

    func testReleasingAnAcknowledgedMessageChangesNothing() {
        var ledger = GroupLedger(cursor: 1)
        ledger.apply(.delivered(sequence: 1, deliveryCount: 1, deadline: 100, owner: 1))
        ledger.apply(.acknowledged(sequence: 1))
        let before = ledger
        ledger.apply(.released(sequence: 1, due: 0, reason: nil))
        XCTAssertEqual(ledger, before)
    }

    func testEventsRoundTrip() {
        let events: [GroupEvent] = [
            .delivered(sequence: .max, deliveryCount: 7, deadline: -5, owner: 0xDEAD_BEEF),
            .acknowledged(sequence: 42),
            .released(sequence: 9, due: 1_700_000_000_000, reason: "timeout talking to 🦊"),
            .released(sequence: 10, due: 0, reason: nil),
            .returned(sequence: 11),
        ]
        for event in events {
            XCTAssertEqual(event.encoded.withUnsafeBytes { GroupEvent($0) }, event)
        }
        XCTAssertNil([UInt8]([9, 1, 2]).withUnsafeBytes { GroupEvent($0) }, "an unknown kind")
        XCTAssertNil([UInt8]([2, 1, 2]).withUnsafeBytes { GroupEvent($0) }, "a short event")
    }

    func testSnapshotRoundTrips() {
        var ledger = GroupLedger(cursor: 1)
        for sequence in UInt64(1)...5 { ledger.apply(.delivered(sequence: sequence, deliveryCount: 1, deadline: Int64(sequence), owner: sequence)) }
        ledger.apply(.acknowledged(sequence: 2))
        ledger.apply(.released(sequence: 4, due: 77, reason: "retry é"))
        let bytes = ledger.encoded
        XCTAssertEqual(bytes.withUnsafeBytes { GroupLedger(encoded: $0) }, ledger)
        XCTAssertNil(Array(bytes.dropLast()).withUnsafeBytes { GroupLedger(encoded: $0) })
        XCTAssertNil((bytes + [0]).withUnsafeBytes { GroupLedger(encoded: $0) })
    }
}
