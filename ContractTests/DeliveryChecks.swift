import AbstractBackend
import XCTest

// Delivery: what is published arrives, once, in order per key, from the keys asked for.
extension MessageQueueContractTests {
    /// Messages published before any consumer exists are delivered to `consume(group: nil)`,
    /// which joins the default group, each once with its payload, key and group.
    public func checkPublishBeforeConsume() async throws {
        try skipIfUnsupported(.publishBeforeConsume)
        let backend = try await freshBackend()
        let key = try key("early")
        try await publishNumbered(10, to: key, on: backend)

        let messages = try await receive(count: 10, from: backend, group: nil)
        XCTAssertEqual(messages.map(\.payload), (0..<10).map(numbered), "payloads, in publish order")
        for message in messages {
            XCTAssertEqual(message.key, key)
            XCTAssertEqual(message.group, .defaultGroup, "consume(group: nil) joins the default group")
            XCTAssertEqual(message.deliveryCount, 1, describe(message))
        }
        XCTAssertEqual(Set(messages.map(\.id)).count, 10, "message ids are unique within a key")
    }

    /// `consume(group:)` reads every key, and picks up a key created while it runs.
    public func checkSeveralKeys() async throws {
        try skipIfUnsupported(.severalKeys)
        let backend = try await freshBackend()
        let keys = try ["alpha", "beta", "gamma"].map(key)
        let group = try group("all-keys")
        var items: [(key: MessageQueueKey, payload: MessageQueuePayload)] = []
        for seq in 0..<5 {
            for key in keys { items.append((key, numbered(seq))) }
        }
        try await publish(items, to: backend)

        let listener = listen(backend, group: group, ack: true)
        let first = Set(items.map { "\($0.key.rawValue)#\($0.payload["seq"]!.intValue!)" })
        try await expectAll(listener, first, tag: keyAndSequence)

        // DESIGN: keys created while consuming are picked up within 1 s; 5 s leaves slack for slow machines.
        let late = try key("delta")
        let publishedLate = ContinuousClock.now
        try await publishNumbered(3, to: late, on: backend)
        let second = Set((0..<3).map { "\(late.rawValue)#\($0)" })
        try await expectAll(listener, second, within: .seconds(5), tag: keyAndSequence)
        let arrival = listener.deliveries.last { $0.message.key == late }!.receivedAt

        XCTAssertEqual(listener.count, 18, "each message delivered once")
        assertOrderedPerKey(listener.messages)
        XCTAssertTrue(listener.messages.allSatisfy { $0.group == group && $0.deliveryCount == 1 })
        XCTAssertLessThan(arrival - publishedLate, .seconds(5), "a new key is picked up while consuming")
    }

    /// A named group receives everything published to every key.
    public func checkGroupDelivery() async throws {
        try skipIfUnsupported(.groupDelivery)
        let backend = try await freshBackend()
        let keys = try [key("orders"), key("invoices")]
        let group = try group("billing")
        try await publishNumbered(10, to: keys[0], on: backend)
        try await publishNumbered(10, to: keys[1], on: backend)

        let messages = try await receive(count: 20, from: backend, group: group)
        let expected = Set(keys.flatMap { key in (0..<10).map { "\(key.rawValue)#\($0)" } })
        assertTags(messages, equal: expected, tag: keyAndSequence)
        assertOrderedPerKey(messages)
        for message in messages {
            XCTAssertEqual(message.group, group, describe(message))
            XCTAssertEqual(message.deliveryCount, 1, describe(message))
        }
    }

    /// One key delivers 500 messages in publish order.
    public func checkFifoPerKey() async throws {
        try skipIfUnsupported(.fifoPerKey)
        let backend = try await freshBackend()
        let key = try key("fifo")
        try await publishNumbered(500, to: key, on: backend)

        let messages = try await receive(count: 500, from: backend, keys: [key], group: group("fifo"))
        let received = messages.map(sequenceNumber)
        if let index = received.indices.first(where: { received[$0] != $0 }) {
            XCTFail("message \(index) has seq \(received[index].map(String.init) ?? "none"), expected \(index): not delivered in publish order")
        }
    }

    /// `publish(_ batch:)` delivers every message, in array order per key.
    public func checkBatchPublish() async throws {
        try skipIfUnsupported(.batchPublish)
        let backend = try await freshBackend()
        let keys = try [key("batch-a"), key("batch-b")]
        // Runs of two and three messages per key, so a provider that groups runs is exercised.
        let batch = (0..<300).map { seq in (key: keys[seq % 5 < 2 ? 0 : 1], payload: numbered(seq)) }
        try await bounded("publish(_ batch:) of 300 messages") { try await backend.publish(batch) }

        let messages = try await receive(count: 300, from: backend, keys: keys, group: group("batch"))
        assertTags(messages, equal: Set(batch.map { "\($0.key.rawValue)#\($0.payload["seq"]!.intValue!)" }), tag: keyAndSequence)
        assertOrderedPerKey(messages)
        XCTAssertEqual(messages.filter { $0.key == keys[0] }.count, 120)
        XCTAssertEqual(messages.filter { $0.key == keys[1] }.count, 180)
    }

    /// Eight tasks publishing 250 messages each at once lose nothing and duplicate nothing; each
    /// publisher's messages keep their order, since its calls return one after another.
    public func checkConcurrentPublishers() async throws {
        try skipIfUnsupported(.concurrentPublishers)
        let backend = try await freshBackend()
        let key = try key("concurrent")
        let listener = listen(backend, keys: [key], group: try group("concurrent"), ack: true)

        try await bounded("8 concurrent publishers × 250 messages", timeout: .seconds(20)) {
            try await withThrowingTaskGroup(of: Void.self) { tasks in
                for publisher in 0..<8 {
                    tasks.addTask {
                        for seq in 0..<250 {
                            try await backend.publish(["publisher": .int(Int64(publisher)), "seq": .int(Int64(seq))], to: key)
                        }
                    }
                }
                try await tasks.waitForAll()
            }
        }
        let tag: (MessageQueueMessage) -> String? = { message in
            guard let publisher = message.payload["publisher"]?.intValue, let seq = message.payload["seq"]?.intValue else { return nil }
            return "\(publisher)/\(seq)"
        }
        let expected = Set((0..<8).flatMap { publisher in (0..<250).map { "\(publisher)/\($0)" } })
        try await expectAll(listener, expected, tag: tag)
        try await expectNoMore(listener, than: 2000, during: .milliseconds(100))

        let messages = listener.messages
        XCTAssertEqual(messages.count, 2000, "exactly the 2000 distinct messages")
        XCTAssertEqual(Set(messages.map(\.id)).count, messages.count, "ids are unique")
        for publisher in 0..<8 {
            let sequence = messages.filter { $0.payload["publisher"]?.intValue == Int64(publisher) }.map(sequenceNumber)
            XCTAssertEqual(sequence, (0..<250).map(Optional.some), "publisher \(publisher)'s messages in the order it published them")
        }
    }

    /// `consume(keys:group:)` delivers only the listed keys, and leaves the others to be read later.
    public func checkExplicitKeysFilter() async throws {
        try skipIfUnsupported(.explicitKeysFilter)
        let backend = try await freshBackend()
        let wanted = try key("wanted")
        let other = try key("other")
        let group = try group("filter")
        try await publish((0..<10).flatMap { [(wanted, numbered($0)), (other, numbered($0))] }, to: backend)

        let listener = listen(backend, keys: [wanted], group: group, ack: true)
        try await expectAll(listener, Set((0..<10).map { "\(wanted.rawValue)#\($0)" }), tag: keyAndSequence)
        try await expectNoMore(listener, than: 10, during: .milliseconds(300))
        let strays = listener.messages.filter { $0.key != wanted }
        XCTAssertTrue(strays.isEmpty, "consume(keys: [\(wanted)]) delivered other keys: \(strays.prefix(5).map(describe))")
        try await listener.stop()

        // The group never read the other key, so it still has all of that key's messages.
        let rest = try await receive(count: 10, from: backend, keys: [other], group: group)
        XCTAssertEqual(rest.map(\.payload), (0..<10).map(numbered))
    }
}
