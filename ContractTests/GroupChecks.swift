import AbstractBackend
import XCTest

// Groups: members of one group share the messages; every group gets all of them.
extension MessageQueueContractTests {
    /// Two members of one group consuming 1000 messages at once split them: together they get
    /// every message, neither gets one the other got, and each gets some.
    public func checkCompetingConsumers() async throws {
        try skipIfUnsupported(.competingConsumers)
        // A long visibility timeout, so that only a broken split (not a slow machine) can
        // deliver a message twice.
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(10)))
        let key = try key("work")
        let group = try group("workers")
        try await publishNumbered(1000, to: key, on: backend)

        let members = (1...2).map { number in
            listen(
                backend, group: group, ack: true, processing: .milliseconds(1),
                label: "consume(group: \"\(group)\") as member \(number) of 2"
            )
        }
        let everything = Set(0..<1000)
        let complete = try await Bounded.poll(timeout: .seconds(15)) {
            everything.isSubset(of: members.flatMap { $0.messages.compactMap(sequenceNumber) })
        }
        // Long enough for a duplicate that was already on its way to show up.
        try await Task.sleep(for: .milliseconds(200))
        for member in members { try await member.stop() }

        let received = members.map { $0.messages.compactMap(sequenceNumber) }
        let union = Set(received.joined())
        let split = received.map { String($0.count) }.joined(separator: " + ")
        guard complete, union == everything else {
            let strays = members.flatMap(\.messages).filter { sequenceNumber($0).map { !everything.contains($0) } ?? true }
            XCTFail("the members received \(union.intersection(everything).count) of 1000 distinct messages within 15 s (split \(split)); missing e.g. \(everything.subtracting(union).sorted().prefix(10)); unexpected \(strays.prefix(3).map(describe))")
            throw ContractCheckStopped(reason: "messages missing from the group")
        }
        XCTAssertEqual(received.joined().count, 1000, "no message may reach both members or one member twice; split \(split)")
        let duplicates = Set(received[0]).intersection(received[1])
        XCTAssertTrue(duplicates.isEmpty, "delivered to both members: \(duplicates.sorted().prefix(10))")
        for (index, messages) in received.enumerated() {
            XCTAssertFalse(messages.isEmpty, "member \(index + 1) received nothing (split \(split)); the group did not share the work")
            XCTAssertEqual(Set(messages).count, messages.count, "member \(index + 1) received a message twice")
        }
    }

    /// Two groups each receive every message of a key, in order.
    public func checkFanOutGroups() async throws {
        try skipIfUnsupported(.fanOutGroups)
        let backend = try await freshBackend()
        let key = try key("events")
        let groups = try [group("audit"), group("search")]
        let listeners = groups.map { listen(backend, keys: [key], group: $0, ack: true) }
        try await publishNumbered(50, to: key, on: backend)

        let expected = Set((0..<50).map { "\(key.rawValue)#\($0)" })
        for listener in listeners {
            try await expectAll(listener, expected, tag: keyAndSequence)
        }
        for (listener, group) in zip(listeners, groups) {
            try await listener.stop()
            XCTAssertEqual(listener.messages.map(sequenceNumber), (0..<50).map(Optional.some), "group \(group) receives every message once, in order")
            XCTAssertTrue(listener.messages.allSatisfy { $0.group == group }, "messages of group \(group) carry that group")
        }
    }

    /// A group created after messages were published, and while another group still has them
    /// pending, starts at the oldest retained message.
    public func checkNewGroupStartsAtOldestRetained() async throws {
        try skipIfUnsupported(.newGroupStartsAtOldestRetained)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(10)))
        let key = try key("retained")
        try await publishNumbered(5, to: key, on: backend)

        let first = try await receive(count: 5, from: backend, keys: [key], group: group("early"), ack: false)
        XCTAssertEqual(first.map(\.payload), (0..<5).map(numbered))

        let late = try group("late")
        let second = try await receive(count: 5, from: backend, keys: [key], group: late)
        XCTAssertEqual(second.first.flatMap(sequenceNumber), 0, "the new group starts with the first message")
        XCTAssertEqual(second.map(\.payload), (0..<5).map(numbered))
        XCTAssertEqual(second.map(\.id), first.map(\.id), "both groups see the same messages")
        for message in second {
            XCTAssertEqual(message.group, late, describe(message))
            XCTAssertEqual(message.deliveryCount, 1, "delivery counts are per group: \(describe(message))")
        }
    }
}
