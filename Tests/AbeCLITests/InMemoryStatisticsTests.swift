import AbstractBackend
import AbstractBackendInMemory
import XCTest

/// The in-memory provider's statistics. `abe` cannot show them — the messages live in the process
/// that published them — so they are checked here, in process, through the same protocol.
final class InMemoryStatisticsTests: XCTestCase {
    func testPendingUndeliveredAndDeadLetters() async throws {
        var configuration = InMemoryBackend.Configuration()
        // One message claimed at a time, so none waits in a consumer's buffer.
        configuration.prefetch = 1
        configuration.maxDeliveries = 1
        let backend = InMemoryBackend(configuration: configuration)
        let key = try MessageQueueKey("orders")
        try await backend.publish((1...4).map { (key: key, payload: ["n": .int(Int64($0))]) })

        var statistics = try await backend.statistics(keys: nil)
        XCTAssertEqual(statistics, [KeyStatistics(key: key, length: 4, groups: [], deadLetters: 0)])

        var iterator = backend.consume(keys: [key], group: try ConsumerGroup("billing")).makeAsyncIterator()
        var received: [MessageQueueMessage] = []
        for _ in 0..<3 {
            let message = try await iterator.next()
            received.append(try XCTUnwrap(message))
        }
        let (first, second, third) = (received[0], received[1], received[2])
        try await first.ack()
        // The last allowed delivery failed: the message moves to the dead-letter key.
        try await third.nack(reason: "card declined")

        statistics = try await backend.statistics(keys: nil)
        XCTAssertEqual(statistics.map(\.key), [key], "dead-letter keys are reported on their key")
        XCTAssertEqual(statistics.first?.length, 4)
        XCTAssertEqual(statistics.first?.deadLetters, 1)
        let billing = try XCTUnwrap(statistics.first?.groups.first)
        XCTAssertEqual(billing.group, try ConsumerGroup("billing"))
        XCTAssertEqual(billing.pending, 1, "the second message is delivered and not acknowledged")
        XCTAssertEqual(billing.undelivered, 1, "the fourth message was never delivered")
        XCTAssertNotNil(billing.oldestPendingAge)

        try await second.ack()
        let named = try await backend.statistics(keys: [key.deadLetterKey, try MessageQueueKey("unknown")])
        XCTAssertEqual(named.map(\.key.rawValue), ["orders:dead-letter", "unknown"])
        XCTAssertEqual(named.first?.length, 1)
        XCTAssertEqual(named.last, KeyStatistics(key: try MessageQueueKey("unknown"), length: 0, groups: [], deadLetters: 0))
        let after = try await backend.statistics(keys: [key])
        XCTAssertEqual(after.first?.groups.first?.pending, 0)
        XCTAssertNil(after.first?.groups.first?.oldestPendingAge)

        await backend.close()
        do {
            _ = try await backend.statistics(keys: nil)
            XCTFail("statistics after close must fail")
        } catch let error as MessageQueueError {
            XCTAssertEqual(error.code, .closed)
        }
    }
}
