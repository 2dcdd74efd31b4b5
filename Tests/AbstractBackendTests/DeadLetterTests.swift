import AbstractBackend
import Foundation
import XCTest

final class DeadLetterTests: XCTestCase {
    func testEnvelopeRoundTrips() throws {
        let letter = DeadLetter(
            key: try MessageQueueKey("orders"), group: try ConsumerGroup("billing"), id: "17", deliveryCount: 5,
            reason: .maxDeliveries, lastError: "card declined", publishedAt: Date(timeIntervalSince1970: 1_700_000_000.25),
            deadLetteredAt: Date(timeIntervalSince1970: 1_700_000_060.5), payload: ["order": 42, "lines": [1, 2.5, "x"]]
        )
        let envelope = letter.envelope
        XCTAssertEqual(envelope["reason"], "max-deliveries")
        XCTAssertEqual(envelope["deliveryCount"], .int(5))
        XCTAssertEqual(envelope["payload"], ["order": 42, "lines": [1, 2.5, "x"]])
        XCTAssertEqual(try DeadLetter(from: envelope), letter)
    }

    func testMissingMembersAreNamed() {
        XCTAssertThrowsError(try DeadLetter(from: ["key": "orders"])) { error in
            let error = error as! MessageQueueError
            XCTAssertEqual(error.code, .invalidPayload)
            XCTAssertTrue(error.message.contains("\"deliveryCount\""), error.message)
        }
    }
}
