import AbstractBackend
import XCTest

// At-least-once: what is not acknowledged comes back, with its delivery count, until it is
// acknowledged or dead-lettered; a cancelled consumer loses nothing.
extension MessageQueueContractTests {
    /// A message that is not acknowledged is delivered again after the visibility timeout (not
    /// before about 0.8 × the timeout) with `deliveryCount` 2; once acknowledged it stays away.
    public func checkVisibilityTimeoutRedelivers() async throws {
        try skipIfUnsupported(.visibilityTimeoutRedelivers)
        let options = self.options
        let timeout = options.visibilityTimeout
        let backend = try await freshBackend(options)
        let key = try key("unacked")
        try await publishNumbered(1, to: key, on: backend)

        let listener = listen(backend, keys: [key], group: try group("slow"), ack: false)
        try await expect(listener, count: 1)
        try await expect(listener, count: 2, within: timeout + .seconds(5))
        let first = listener.deliveries[0]
        let second = listener.deliveries[1]
        XCTAssertEqual(first.message.deliveryCount, 1)
        XCTAssertEqual(second.message.deliveryCount, 2, "the redelivery counts as the second delivery")
        XCTAssertEqual(second.message.id, first.message.id, "the same message comes back")
        XCTAssertEqual(second.message.payload, numbered(0))
        let gap = second.receivedAt - first.receivedAt
        XCTAssertGreaterThanOrEqual(gap, timeout * 4 / 5, "redelivered \(seconds(gap)) after the first delivery; the visibility timeout is \(seconds(timeout))")

        let redelivery = second.message
        try await bounded("ack() of the redelivered message") { try await redelivery.ack() }
        try await expectNoMore(listener, than: 2, during: timeout * 3)
    }

    /// `nack()` redelivers at once with `deliveryCount` 2 (well before the visibility timeout),
    /// and `nack(retryAfter:)` not before the delay.
    public func checkNackRedelivers() async throws {
        try skipIfUnsupported(.nackRedelivers)
        // A visibility timeout far longer than the waits, so only the nack can bring the message back.
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30), maxDeliveries: 5))
        let key = try key("nacked")
        try await publishNumbered(1, to: key, on: backend)

        let listener = listen(backend, keys: [key], group: try group("retrying"), ack: false)
        try await expect(listener, count: 1)
        let first = listener.deliveries[0].message
        XCTAssertEqual(first.deliveryCount, 1)
        try await bounded("nack()") { try await first.nack() }
        try await expect(listener, count: 2, within: .seconds(5))
        let second = listener.deliveries[1].message
        XCTAssertEqual(second.id, first.id, "the nacked message comes back")
        XCTAssertEqual(second.deliveryCount, 2)
        XCTAssertEqual(second.payload, numbered(0))

        let delay = Duration.milliseconds(300)
        let nackedAt = ContinuousClock.now
        try await bounded("nack(retryAfter: 300 ms)") { try await second.nack(retryAfter: delay) }
        try await expect(listener, count: 3, within: .seconds(5))
        let third = listener.deliveries[2]
        XCTAssertEqual(third.message.id, first.id)
        XCTAssertEqual(third.message.deliveryCount, 3)
        let waited = third.receivedAt - nackedAt
        XCTAssertGreaterThanOrEqual(waited, .milliseconds(250), "nack(retryAfter: 300 ms) redelivered after only \(seconds(waited))")
        let last = third.message
        try await bounded("ack()") { try await last.ack() }
    }

    /// After `maxDeliveries` failed deliveries the message appears once in `<key>:dead-letter`,
    /// as a ``DeadLetter`` describing it, and its own key does not deliver it again.
    public func checkDeadLetterAfterMaxDeliveries() async throws {
        try skipIfUnsupported(.deadLetterAfterMaxDeliveries)
        // Long enough that every nack comes before the timeout; short enough to see that the
        // dead-lettered message does not time out and come back.
        let options = ContractOptions(namespace: namespace, visibilityTimeout: .milliseconds(500), maxDeliveries: 3)
        let backend = try await freshBackend(options)
        let key = try key("poison")
        let group = try group("handlers")
        let original: MessageQueuePayload = ["order": 42, "note": "fails every time"]
        try await publish([(key, original)], to: backend)

        let listener = listen(backend, keys: [key], group: group, ack: false)
        let deadLetters = listen(backend, keys: [key.deadLetterKey], group: try self.group("inspector"), ack: true)
        for attempt in 1...options.maxDeliveries {
            try await expect(listener, count: attempt, within: .seconds(5))
            let message = listener.deliveries[attempt - 1].message
            XCTAssertEqual(message.deliveryCount, attempt, describe(message))
            try await bounded("nack(reason:) #\(attempt)") { try await message.nack(reason: "boom-\(attempt)") }
        }
        try await expect(deadLetters, count: 1, within: .seconds(5))
        // Longer than the visibility timeout: a message left pending would come back by then.
        try await expectNoMore(listener, than: options.maxDeliveries, during: options.visibilityTimeout + .milliseconds(300))
        try await expectNoMore(deadLetters, than: 1, during: .zero)

        let first = listener.deliveries[0].message
        let letterMessage = deadLetters.deliveries[0].message
        guard letterMessage.key == key.deadLetterKey else {
            XCTFail("consume(keys: [\(key.deadLetterKey)]) delivered a message of another key: \(describe(letterMessage))")
            throw ContractCheckStopped(reason: "wrong key")
        }
        let letter: DeadLetter
        do {
            letter = try DeadLetter(from: letterMessage.payload)
        } catch {
            XCTFail("the dead-letter message is not a DeadLetter envelope (\(error.message)): \(describe(letterMessage))")
            throw ContractCheckStopped(reason: "not a dead letter")
        }
        XCTAssertEqual(letter.key, key)
        XCTAssertEqual(letter.group, group)
        XCTAssertEqual(letter.id, first.id)
        XCTAssertEqual(letter.deliveryCount, options.maxDeliveries)
        XCTAssertEqual(letter.reason, DeadLetter.Reason.maxDeliveries)
        XCTAssertEqual(letter.lastError, "boom-\(options.maxDeliveries)")
        XCTAssertEqual(letter.payload, original)
        XCTAssertEqual(letter.publishedAt.timeIntervalSince1970, first.publishedAt.timeIntervalSince1970, accuracy: 1)
        XCTAssertGreaterThanOrEqual(letter.deadLetteredAt, letter.publishedAt)
    }

    /// Cancelling a consumer's task ends its iteration with `CancellationError` within 1 s (plus
    /// 0.5 s slack), whether it is waiting or in the middle of a stream, and a new member of the
    /// group then receives every message that was not acknowledged.
    public func checkCancellationPrompt() async throws {
        try skipIfUnsupported(.cancellationPrompt)
        let backend = try await freshBackend()
        let group = try group("cancellable")

        let idle = listen(backend, keys: [try key("quiet")], group: group, ack: false, label: "a consumer waiting on an empty key")
        try await Task.sleep(for: .milliseconds(200))
        try await expectCancellation(of: idle)

        let key = try key("jobs")
        try await publishNumbered(10, to: key, on: backend)
        let busy = listen(
            backend, keys: [key], group: group, ack: false, processing: .milliseconds(20),
            label: "a consumer in the middle of a stream"
        )
        try await expect(busy, count: 3)
        try await expectCancellation(of: busy)
        let held = Set(busy.messages.map(\.id))

        // The messages it held come back after the visibility timeout; the rest at once.
        let successor = listen(backend, keys: [key], group: group, ack: true, label: "the next member of the group")
        try await expectAll(successor, Set((0..<10).map { "\(key.rawValue)#\($0)" }), tag: keyAndSequence)
        for message in successor.messages where held.contains(message.id) {
            XCTAssertGreaterThanOrEqual(message.deliveryCount, 2, "delivered to the cancelled consumer before: \(describe(message))")
        }
    }

    /// Cancels `listener` and fails unless its iteration ends with `CancellationError` within 1.5 s.
    private func expectCancellation(of listener: MessageListener, file: StaticString = #filePath, line: UInt = #line) async throws {
        if case .failed(let error)? = listener.ending {
            XCTFail("\(listener.label) ended before it was cancelled: \(describe(error))", file: file, line: line)
            throw ContractCheckStopped(reason: "consumer ended early")
        }
        let cancelledAt = ContinuousClock.now
        listener.cancel()
        guard try await listener.waitForEnd(timeout: .seconds(3)), let endedAt = listener.endedAt else {
            XCTFail("\(listener.label) was still iterating 3 s after its task was cancelled", file: file, line: line)
            throw ContractCheckStopped(reason: "cancellation ignored")
        }
        let took = endedAt - cancelledAt
        XCTAssertLessThanOrEqual(took, .milliseconds(1500), "\(listener.label) took \(seconds(took)) to end after cancellation; the limit is 1 s", file: file, line: line)
        switch listener.ending {
        case .failed(let error)? where error is CancellationError:
            break
        case .failed(let error)?:
            XCTFail("\(listener.label) ended with \(describe(error)) after cancellation; it must throw CancellationError", file: file, line: line)
        default:
            XCTFail("\(listener.label) ended without an error after cancellation; it must throw CancellationError", file: file, line: line)
        }
    }
}
