import AbstractBackend
import AbstractBackendInMemory
import XCTest

/// Behaviour specific to the in-memory provider; the shared model is covered by its contract runner.
final class InMemoryBackendTests: XCTestCase {
    private func backend(capacity: Int = 65_536, visibilityTimeout: Duration = .seconds(30), prefetch: Int = 64) -> InMemoryBackend {
        var configuration = InMemoryBackend.Configuration()
        configuration.capacity = capacity
        configuration.visibilityTimeout = visibilityTimeout
        configuration.prefetch = prefetch
        return InMemoryBackend(configuration: configuration)
    }

    /// Runs `body`, failing the test instead of hanging when it takes longer than `seconds`.
    private func bounded<T: Sendable>(
        _ seconds: Double = 5,
        _ what: String,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask { try await body() }
            group.addTask {
                try await Task.sleep(for: .seconds(seconds))
                return nil
            }
            defer { group.cancelAll() }
            guard let result = try await group.next()!  else {
                XCTFail("\(what) did not finish within \(seconds) s")
                throw CancellationError()
            }
            return result
        }
    }

    func testFromEnvironmentReadsEveryVariable() throws {
        let backend = try InMemoryBackend.fromEnvironment([
            "ABE_MEMORY_CAPACITY": "10", "ABE_MEMORY_VISIBILITY_TIMEOUT": "250ms",
            "ABE_MEMORY_MAX_DELIVERIES": "2", "ABE_MEMORY_PREFETCH": "4", "ABE_DEFAULT_GROUP": "workers",
        ])
        XCTAssertEqual(backend.configuration.capacity, 10)
        XCTAssertEqual(backend.configuration.visibilityTimeout, .milliseconds(250))
        XCTAssertEqual(backend.configuration.maxDeliveries, 2)
        XCTAssertEqual(backend.configuration.prefetch, 4)
        XCTAssertEqual(backend.configuration.defaultGroup.name, "workers")
    }

    func testFromEnvironmentNamesTheBadVariable() {
        let cases: [(String, String, String)] = [
            ("ABE_MEMORY_CAPACITY", "0", "out of range"),
            ("ABE_MEMORY_VISIBILITY_TIMEOUT", "forever", "not a duration"),
            ("ABE_MEMORY_MAX_DELIVERIES", "-3", "out of range"),
            ("ABE_MEMORY_PREFETCH", "1.5", "not a whole number"),
        ]
        for (variable, value, problem) in cases {
            XCTAssertThrowsError(try InMemoryBackend.fromEnvironment([variable: value])) { error in
                let error = error as! MessageQueueError
                XCTAssertEqual(error.code, .invalidConfiguration)
                XCTAssertTrue(error.message.hasPrefix("\(variable)=\"\(value)\""), error.message)
                XCTAssertTrue(error.message.contains(problem), error.message)
            }
        }
    }

    func testPublishSuspendsWhileFullAndResumesAfterAcks() async throws {
        let backend = backend(capacity: 2)
        let key = try MessageQueueKey("full")
        try await backend.publish(["n": 1], to: key)
        try await backend.publish(["n": 2], to: key)
        let third = Task { try await backend.publish(["n": 3], to: key) }
        try await Task.sleep(for: .milliseconds(100))
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        let first = try await iterator.next()!
        XCTAssertEqual(first.payload["n"], 1)
        // Still full: the first message is delivered but not yet acknowledged.
        try await Task.sleep(for: .milliseconds(100))
        try await first.ack()
        try await bounded(5, "the suspended publish") { try await third.value }
        let second = try await iterator.next()!
        let thirdMessage = try await iterator.next()!
        XCTAssertEqual([second.payload["n"], thirdMessage.payload["n"]], [2, 3])
        await backend.close()
    }

    func testSuspendedPublishIsCancellableAndPublishesNothing() async throws {
        let backend = backend(capacity: 1)
        let key = try MessageQueueKey("cancel")
        try await backend.publish(["n": 1], to: key)
        let blocked = Task { try await backend.publish(["n": 2], to: key) }
        try await Task.sleep(for: .milliseconds(50))
        blocked.cancel()
        let outcome = try await bounded(2, "the cancelled publish") { await blocked.result }
        XCTAssertThrowsError(try outcome.get()) { XCTAssertTrue($0 is CancellationError, "\($0)") }
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        let only = try await iterator.next()!
        XCTAssertEqual(only.payload["n"], 1)
        try await only.ack()
        try await backend.publish(["n": 3], to: key)
        let next = try await iterator.next()
        XCTAssertEqual(next?.payload["n"], 3)
        await backend.close()
    }

    func testCloseFailsASuspendedPublisher() async throws {
        let backend = backend(capacity: 1)
        let key = try MessageQueueKey("close")
        try await backend.publish(["n": 1], to: key)
        let blocked = Task { try await backend.publish(["n": 2], to: key) }
        try await Task.sleep(for: .milliseconds(50))
        await backend.close()
        let outcome = try await bounded(2, "the publisher suspended at close") { await blocked.result }
        XCTAssertThrowsError(try outcome.get()) { XCTAssertEqual(($0 as? MessageQueueError)?.code, .closed) }
    }

    func testAcknowledgedMessagesAreDroppedSoCapacityIsReused() async throws {
        let backend = backend(capacity: 3)
        let key = try MessageQueueKey("reuse")
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        for round in 0..<10 {
            for n in 0..<3 { try await backend.publish(["n": .int(Int64(round * 3 + n))], to: key) }
            for n in 0..<3 {
                let message = try await iterator.next()!
                XCTAssertEqual(message.payload["n"], .int(Int64(round * 3 + n)))
                try await message.ack()
            }
        }
        await backend.close()
    }

    func testConsumingEveryKeySkipsDeadLetterKeys() async throws {
        let backend = backend()
        let key = try MessageQueueKey("orders")
        try await backend.publish(["kind": "dead"], to: key.deadLetterKey)
        try await backend.publish(["kind": "live"], to: key)
        let consumer = Task {
            var keys: [MessageQueueKey] = []
            do {
                for try await message in backend.consume(group: nil) { keys.append(message.key) }
            } catch is CancellationError {}
            return keys
        }
        try await Task.sleep(for: .milliseconds(300))
        consumer.cancel()
        let keys = try await bounded(2, "the cancelled consumer") { try await consumer.value }
        XCTAssertEqual(keys, [key])
        await backend.close()
    }

    func testPrefetchedButUnseenMessagesGoBackWhenAConsumerStops() async throws {
        let backend = backend(prefetch: 8)
        let key = try MessageQueueKey("prefetch")
        try await backend.publish((0..<8).map { (key: key, payload: ["n": .int(Int64($0))]) })
        do {
            var first = backend.consume(keys: [key], group: nil).makeAsyncIterator()
            let message = try await first.next()!
            XCTAssertEqual(message.payload["n"], 0)
            try await message.ack()
        }
        // The first member is gone; the seven it prefetched go to the next member at once,
        // in order and still on their first delivery.
        let (numbers, deliveryCounts) = try await bounded(2, "the released messages") { () async throws -> ([Int64], [Int]) in
            var second = backend.consume(keys: [key], group: nil).makeAsyncIterator()
            var numbers: [Int64] = []
            var deliveryCounts: [Int] = []
            for _ in 1..<8 {
                let message = try await second.next()!
                numbers.append(message.payload["n"]?.intValue ?? -1)
                deliveryCounts.append(message.deliveryCount)
            }
            return (numbers, deliveryCounts)
        }
        XCTAssertEqual(numbers, Array(1..<8))
        XCTAssertEqual(deliveryCounts, Array(repeating: 1, count: 7))
        await backend.close()
    }

    /// Publishers outrun consumers through a tiny capacity, with two groups holding the log back:
    /// every message must still arrive once per group, with no publisher left suspended.
    func testBackpressureUnderLoadLosesNothingAndNeverStalls() async throws {
        let backend = backend(capacity: 8, prefetch: 3)
        let key = try MessageQueueKey("pressure")
        let groups = [try ConsumerGroup("a"), try ConsumerGroup("b")]
        let perPublisher = 500
        let publishers = 4
        let total = perPublisher * publishers
        let received = try await bounded(30, "publishing and consuming \(total) messages through capacity 8") {
            try await withThrowingTaskGroup(of: [Int64].self) { tasks in
                for group in groups {
                    for _ in 0..<2 {
                        tasks.addTask {
                            var seen: [Int64] = []
                            do {
                                for try await message in backend.consume(keys: [key], group: group) {
                                    seen.append(message.payload["n"]!.intValue!)
                                    try await message.ack()
                                }
                            } catch is CancellationError {}
                            return seen
                        }
                    }
                }
                try await withThrowingTaskGroup(of: Void.self) { senders in
                    for publisher in 0..<publishers {
                        senders.addTask {
                            for n in 0..<perPublisher {
                                try await backend.publish(["n": .int(Int64(publisher * perPublisher + n))], to: key)
                            }
                        }
                    }
                    try await senders.waitForAll()
                }
                // Give consumers time to drain, then stop them.
                try await Task.sleep(for: .milliseconds(500))
                tasks.cancelAll()
                var all: [[Int64]] = []
                for try await part in tasks { all.append(part) }
                return all
            }
        }
        // Each number exactly twice: once in each group.
        let everything = received.flatMap { $0 }
        XCTAssertEqual(everything.count, total * 2, "each message once per group")
        let counts = Dictionary(everything.map { ($0, 1) }, uniquingKeysWith: +)
        XCTAssertEqual(counts.count, total)
        XCTAssertTrue(counts.values.allSatisfy { $0 == 2 })
        await backend.close()
    }
}

final class MessageIDTests: XCTestCase {
    func testIDsAreDecimalSequenceNumbers() async throws {
        let backend = InMemoryBackend()
        let key = try MessageQueueKey("ids")
        try await backend.publish((0..<12).map { (key: key, payload: ["n": .int(Int64($0))]) })
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        var ids: [String] = []
        for _ in 0..<12 { ids.append(try await iterator.next()!.id) }
        XCTAssertEqual(ids, (1...12).map { String($0) })
        await backend.close()
    }
}
