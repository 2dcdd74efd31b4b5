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

final class PayloadValidationTests: XCTestCase {
    private func nested(_ levels: Int) -> JSONValue {
        var value: JSONValue = 1
        for _ in 0..<levels { value = [value] }
        return value
    }

    func testDepthLimitMatchesTheReader() throws {
        // The payload object itself is the first level.
        let deepest = MessageQueuePayload(["a": nested(MessageQueuePayload.maxDepth - 1)])
        XCTAssertNoThrow(try deepest.validate())
        let text = try deepest.jsonText()
        XCTAssertEqual(try MessageQueuePayload(jsonText: text), deepest)

        let tooDeep = MessageQueuePayload(["a": nested(MessageQueuePayload.maxDepth)])
        XCTAssertFalse(tooDeep.isValidJSON)
        XCTAssertThrowsError(try tooDeep.validate()) { error in
            XCTAssertEqual((error as! MessageQueueError).code, .invalidPayload)
            XCTAssertTrue((error as! MessageQueueError).message.contains("512 levels"))
        }
        XCTAssertThrowsError(try MessageQueuePayload(jsonText: "{\"a\":" + String(repeating: "[", count: 512) + String(repeating: "]", count: 512) + "}"))
    }

    /// `appendJSON` checks while it writes; what it refuses leaves the caller's buffer as it was.
    func testRefusedPayloadLeavesTheBufferUnchanged() throws {
        let start = Array("head".utf8)
        let refused: [(MessageQueuePayload, String)] = [
            (["a": 1, "b": nested(MessageQueuePayload.maxDepth), "c": "x"], "512 levels"),
            (["a": "x", "b": ["c": [1, .double(.nan)]]], "NaN or infinite"),
        ]
        for (payload, reason) in refused {
            var buffer = start
            XCTAssertThrowsError(try payload.appendJSON(to: &buffer)) { error in
                XCTAssertEqual((error as! MessageQueueError).code, .invalidPayload)
                XCTAssertTrue((error as! MessageQueueError).message.contains(reason))
            }
            XCTAssertEqual(buffer, start)
            XCTAssertThrowsError(try payload.jsonBytes())
        }
        let deepest = MessageQueuePayload(["a": nested(MessageQueuePayload.maxDepth - 1)])
        var buffer = start
        try deepest.appendJSON(to: &buffer)
        XCTAssertEqual(Array(buffer.dropFirst(start.count)), try deepest.jsonBytes())
    }

    func testNonFiniteNumbersAreRejected() {
        for bad in [Double.nan, .infinity, -.infinity] {
            let payload: MessageQueuePayload = ["ok": 1, "nested": ["x": [.double(bad)]]]
            XCTAssertThrowsError(try payload.validate()) { error in
                XCTAssertTrue((error as! MessageQueueError).message.contains("NaN or infinite"))
            }
        }
    }

    func testPayloadIsCodableInsideApplicationTypes() throws {
        struct Envelope: Codable, Equatable {
            var name: String
            var body: MessageQueuePayload
        }
        let envelope = Envelope(name: "x", body: ["n": 1, "d": 1.0])
        let payload = try MessageQueuePayload(encoding: envelope)
        XCTAssertEqual(payload["body"], ["n": 1, "d": 1.0])
        XCTAssertEqual(try payload.decode(as: Envelope.self), envelope)
    }
}
