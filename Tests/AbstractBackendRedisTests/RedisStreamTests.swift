import AbstractBackend
@testable import AbstractBackendRedis
import XCTest

/// How the provider maps the model onto Redis Streams: the upstream wire format, dead letters
/// for foreign entries, retention, key discovery.
final class RedisStreamTests: RedisTestCase {
    /// What we publish is one stream entry with exactly one field, `data`, holding the payload's
    /// compact JSON: the upstream Python provider's format.
    func testPublishWritesOneDataField() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("orders")
        let payload: MessageQueuePayload = ["order": 42, "customer": "Zoë 🦊", "total": 12.5, "lines": [1, 2]]
        try await backend.publish(payload, to: key)

        let range = try await raw("XRANGE", "orders", "-", "+")
        let entries = try XCTUnwrap(range.elements)
        XCTAssertEqual(entries.count, 1)
        let fields = try XCTUnwrap(entries.first?.elements?.last?.elements)
        XCTAssertEqual(fields.count, 2, "one field name and its value")
        XCTAssertEqual(fields[0].text, "data")
        guard case .bulk(let json) = fields[1] else { return XCTFail("the data field is not a string: \(fields[1])") }
        XCTAssertEqual(json, try payload.jsonBytes(), "the value is the payload's compact JSON")
        XCTAssertEqual(try MessageQueuePayload(jsonBytes: json), payload)
        let registered = try await raw("SISMEMBER", RedisNames.registryName, "orders").integer
        XCTAssertEqual(registered, 1, "the key is registered for discovery")
    }

    /// Entries written the way the upstream provider writes them (a raw `XADD <key> * data <json>`,
    /// Python's `json.dumps` spacing) are consumed with their ids and publish times.
    func testConsumesEntriesWrittenByTheUpstreamProvider() async throws {
        let backend = try makeBackend()
        let first = try await raw("XADD", "jobs", "*", "data", #"{"job": 1, "note": "from python", "tags": ["a", "b"]}"#).text
        let second = try await raw("XADD", "jobs", "*", "data", #"{"job": 2, "ratio": 0.25}"#).text

        let (received, task) = Received.consuming(backend.consume(keys: [try MessageQueueKey("jobs")], group: nil))
        defer { task.cancel() }
        let arrived = await eventually(within: .seconds(5)) { received.messages.count >= 2 }
        XCTAssertTrue(arrived, "received \(received.messages.count) of 2 entries")
        let messages = received.messages
        XCTAssertEqual(messages.map(\.id), [first, second].compactMap { $0 })
        XCTAssertEqual(messages.first?.payload, ["job": 1, "note": "from python", "tags": ["a", "b"]])
        XCTAssertEqual(messages.last?.payload, ["job": 2, "ratio": 0.25])
        XCTAssertEqual(messages.first?.deliveryCount, 1)
        let age = Date().timeIntervalSince(try XCTUnwrap(messages.first?.publishedAt))
        XCTAssertLessThan(abs(age), 10, "publishedAt comes from the entry id")
    }

    /// Entries another producer wrote without a usable `data` field go to the dead letter with
    /// the reason, and consumption goes on to the next entry.
    func testForeignEntriesWithoutPayloadGoToTheDeadLetter() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("mixed")
        _ = try await raw("XADD", "mixed", "*", "body", "{}")
        _ = try await raw("XADD", "mixed", "*", "data", "not json")
        _ = try await raw("XADD", "mixed", "*", "data", "[1, 2, 3]")
        _ = try await raw("XADD", "mixed", "*", "data", #"{"ok": true}"#)

        let (received, task) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("workers")))
        defer { task.cancel() }
        let (letters, lettersTask) = Received.consuming(backend.consume(keys: [key.deadLetterKey], group: try ConsumerGroup("inspector")))
        defer { lettersTask.cancel() }
        let arrived = await eventually(within: .seconds(5)) { received.messages.count >= 1 && letters.messages.count >= 3 }
        XCTAssertTrue(arrived, "received \(received.messages.count) message(s) and \(letters.messages.count) dead letter(s)")
        XCTAssertEqual(received.messages.map(\.payload), [["ok": true]], "only the valid entry is delivered")

        let envelopes = try letters.messages.map { try DeadLetter(from: $0.payload) }
        XCTAssertEqual(envelopes.map(\.reason), Array(repeating: .invalidPayload, count: 3))
        XCTAssertEqual(envelopes.map(\.key), Array(repeating: key, count: 3))
        XCTAssertTrue(envelopes[0].lastError?.contains("no data field") ?? false, "\(envelopes[0].lastError ?? "nil")")
        XCTAssertEqual(envelopes[1].payload, ["raw": "not json"])
        XCTAssertTrue(envelopes[2].lastError?.contains("not a JSON object") ?? false, "\(envelopes[2].lastError ?? "nil")")
        let drained = try await eventually(within: .seconds(3)) {
            try await raw("XPENDING", "mixed", "workers").elements?.first?.integer == 0
        }
        XCTAssertTrue(drained, "dead-lettered entries are acknowledged in their group")
    }

    /// Entries are trimmed only once every group of the key has acknowledged them.
    func testRetentionTrimsOnlyWhatEveryGroupAcknowledged() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("retained")
        for number in 0..<10 { try await backend.publish(["n": .int(Int64(number))], to: key) }
        _ = try await raw("XGROUP", "CREATE", "retained", "audit", "0")

        let (billing, billingTask) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("billing")))
        defer { billingTask.cancel() }
        let billed = await eventually(within: .seconds(5)) { billing.messages.count == 10 }
        XCTAssertTrue(billed)
        // Several retention passes (one a second) while "audit" has read nothing.
        try await Task.sleep(for: .milliseconds(2500))
        let length = try await raw("XLEN", "retained").integer
        XCTAssertEqual(length, 10, "nothing is trimmed while another group has not acknowledged")

        let (audit, auditTask) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("audit")))
        defer { auditTask.cancel() }
        let audited = await eventually(within: .seconds(5)) { audit.messages.count == 10 }
        XCTAssertTrue(audited)
        let trimmed = try await eventually(within: .seconds(5)) { try await raw("XLEN", "retained").integer == 0 }
        let remaining = try await raw("XLEN", "retained")
        XCTAssertTrue(trimmed, "acknowledged by both groups, the entries are trimmed; length is \(remaining)")
    }

    /// A consumer of every key picks up a key first published by another backend instance (as
    /// another process would) within a second, and never reads dead-letter keys on its own.
    func testConsumerOfEveryKeyDiscoversNewKeysWithinASecond() async throws {
        let consumerSide = try makeBackend()
        let publisherSide = try makeBackend()
        let (received, task) = Received.consuming(consumerSide.consume(group: nil))
        defer { task.cancel() }
        try await Task.sleep(for: .milliseconds(300))

        try await publisherSide.publish(["kind": "dead"], to: try MessageQueueKey("invoices").deadLetterKey)
        let publishedAt = ContinuousClock.now
        try await publisherSide.publish(["invoice": 7], to: try MessageQueueKey("invoices"))
        let arrived = await eventually(within: .seconds(3)) { !received.messages.isEmpty }
        let took = ContinuousClock.now - publishedAt
        XCTAssertTrue(arrived)
        XCTAssertLessThanOrEqual(took, .milliseconds(1200), "a new key was picked up after \(took)")
        try await Task.sleep(for: .milliseconds(700))
        XCTAssertEqual(received.messages.map(\.payload), [["invoice": 7]], "dead-letter keys are not consumed by consume(group:)")
    }

    /// An iterator's consumer (`<host>-<pid>-<n>`) is deleted when it ends with nothing pending,
    /// and kept while it still has pending entries, which deleting it would drop.
    func testConsumerIsRemovedOnlyWhenNothingIsPending() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("members")
        for number in 0..<2 { try await backend.publish(["n": .int(Int64(number))], to: key) }

        let (acking, ackingTask) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("tidy")))
        let tidyArrived = await eventually(within: .seconds(5)) { acking.messages.count == 2 }
        XCTAssertTrue(tidyArrived)
        let tidyConsumers = try await consumers(of: "members", group: "tidy")
        XCTAssertEqual(tidyConsumers.count, 1)
        XCTAssertTrue(tidyConsumers.first?.name.contains("-\(ProcessInfo.processInfo.processIdentifier)-") ?? false, "\(tidyConsumers)")
        ackingTask.cancel()
        let removed = try await eventually(within: .seconds(3)) { try await consumers(of: "members", group: "tidy").isEmpty }
        XCTAssertTrue(removed, "a consumer with nothing pending is deleted when its iterator ends")

        let holding = Task {
            var iterator = backend.consume(keys: [key], group: try ConsumerGroup("holding")).makeAsyncIterator()
            _ = try await iterator.next()
            try await Task.sleep(for: .seconds(60))
        }
        let held = try await eventually(within: .seconds(5)) { try await consumers(of: "members", group: "holding").first?.pending ?? 0 > 0 }
        XCTAssertTrue(held)
        holding.cancel()
        try await Task.sleep(for: .milliseconds(500))
        let kept = try await consumers(of: "members", group: "holding")
        XCTAssertEqual(kept.count, 1, "a consumer with pending entries is kept")
        XCTAssertGreaterThan(kept.first?.pending ?? 0, 0)
    }

    private func consumers(of stream: String, group: String) async throws -> [(name: String, pending: Int64)] {
        (try await raw("XINFO", "CONSUMERS", stream, group).elements ?? []).compactMap { row in
            let fields = row.fields
            guard let name = fields["name"]?.text, let pending = fields["pending"]?.integer else { return nil }
            return (name, pending)
        }
    }

    /// The key registry's name cannot be used as a queue key.
    func testRegistryNameIsReserved() async throws {
        let backend = try makeBackend()
        do {
            try await backend.publish(["x": 1], to: try MessageQueueKey(RedisNames.registryName))
            XCTFail("publishing to the registry's name succeeded")
        } catch let error as MessageQueueError {
            XCTAssertEqual(error.code, .invalidKey)
            XCTAssertTrue(error.message.contains("reserved"), error.message)
        }
    }
}
