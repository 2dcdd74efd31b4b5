import AbstractBackend
import AbstractBackendTemplate
import Logging
import Synchronization
import XCTest

/// What the contract suite does not cover: configuration, the descriptor, deprecation, retention
/// and the timeout path to the dead-letter key.
final class TemplateBackendTests: XCTestCase {
    // MARK: Configuration

    func testEnvironmentSetsEveryOption() throws {
        let configuration = try TemplateBackend.Configuration(environment: [
            TemplateBackend.Variable.visibilityTimeout: "250ms",
            TemplateBackend.Variable.maxDeliveries: "7",
            ConsumerGroup.defaultGroupVariable: "billing",
        ])
        XCTAssertEqual(configuration.visibilityTimeout, .milliseconds(250))
        XCTAssertEqual(configuration.maxDeliveries, 7)
        XCTAssertEqual(configuration.defaultGroup, try ConsumerGroup("billing"))
        XCTAssertEqual(try TemplateBackend.Configuration(environment: [:]), TemplateBackend.Configuration())
    }

    func testBadVariableIsNamedWithItsValueAndRange() {
        XCTAssertThrowsError(try TemplateBackend.fromEnvironment([TemplateBackend.Variable.maxDeliveries: "0"])) { error in
            let error = error as! MessageQueueError
            XCTAssertEqual(error.code, .invalidConfiguration)
            XCTAssertTrue(error.message.hasPrefix("\(TemplateBackend.Variable.maxDeliveries)=\"0\""), error.message)
            XCTAssertTrue(error.message.contains("1 to 1000000"), error.message)
        }
        XCTAssertThrowsError(try TemplateBackend.fromEnvironment([TemplateBackend.Variable.visibilityTimeout: "soon"])) { error in
            XCTAssertEqual((error as! MessageQueueError).code, .invalidConfiguration)
            XCTAssertTrue((error as! MessageQueueError).message.hasPrefix(TemplateBackend.Variable.visibilityTimeout), "\(error)")
        }
    }

    func testConfigurationBuiltInCodeIsValidated() {
        XCTAssertThrowsError(try TemplateBackend(configuration: .init(maxDeliveries: 0))) { error in
            XCTAssertEqual((error as! MessageQueueError).code, .invalidConfiguration)
            XCTAssertTrue((error as! MessageQueueError).message.hasPrefix("maxDeliveries 0"), "\(error)")
        }
        XCTAssertThrowsError(try TemplateBackend(configuration: .init(visibilityTimeout: .zero))) { error in
            XCTAssertTrue((error as! MessageQueueError).message.hasPrefix("visibilityTimeout"), "\(error)")
        }
    }

    // MARK: The descriptor

    func testDescriptorDocumentsItsVariablesAndIsSelectedByThem() async throws {
        let provider = TemplateBackend.provider
        XCTAssertEqual(provider.name, TemplateBackend.providerName)
        XCTAssertEqual(provider.product, "AbstractBackendTemplate")
        XCTAssertEqual(
            Set(provider.environmentVariables.map(\.name)),
            [TemplateBackend.Variable.visibilityTimeout, TemplateBackend.Variable.maxDeliveries, ConsumerGroup.defaultGroupVariable]
        )
        XCTAssertTrue(provider.environmentVariables.allSatisfy { !$0.summary.isEmpty && !$0.isSecret })
        XCTAssertFalse(provider.isConfigured([:]))
        XCTAssertFalse(provider.isConfigured([ConsumerGroup.defaultGroupVariable: "billing"]), "a variable every provider reads selects none")

        let (selected, reason) = try selectProvider(providers: [provider], environment: [TemplateBackend.Variable.maxDeliveries: "3"])
        XCTAssertEqual(selected.name, TemplateBackend.providerName)
        XCTAssertEqual(reason, "configured by \(TemplateBackend.Variable.maxDeliveries)")
        let backend = try loadBackend(providers: [provider], environment: [queueBackendVariable: TemplateBackend.providerName])
        XCTAssertTrue(backend is TemplateBackend)
        await backend.close()
    }

    /// How this provider is retired: its descriptor gets a `deprecation`, and `loadBackend` warns
    /// once per process, naming the replacement, for as long as the provider still ships.
    func testDeprecatedDescriptorWarnsOnceNamingTheReplacement() async throws {
        var retiring = TemplateBackend.provider
        retiring.deprecation = Deprecation(replacement: "redis", message: "It is removed in 2.0.0; set QUEUE_BACKEND=redis and REDIS_URL.")
        let warnings = CapturedWarnings()
        let logger = Logger(label: "test") { _ in warnings.handler }
        for _ in 0..<3 {
            let backend = try loadBackend(
                providers: [retiring], environment: [queueBackendVariable: TemplateBackend.providerName], logger: logger
            )
            await backend.close()
        }
        XCTAssertEqual(warnings.messages.count, 1, "\(warnings.messages)")
        let warning = try XCTUnwrap(warnings.messages.first)
        XCTAssertTrue(warning.contains("deprecated") && warning.contains("redis") && warning.contains("2.0.0"), warning)
    }

    // MARK: Behaviour beyond the contract

    /// A message is dropped once every group that exists on its key has acknowledged it, so a
    /// group that comes later starts after it; a message some group still needs stays.
    func testAcknowledgedMessagesAreDroppedForLaterGroups() async throws {
        let backend = try TemplateBackend()
        let key = try MessageQueueKey("orders")
        for order in 0..<3 { try await backend.publish(["order": .int(Int64(order))], to: key) }
        for message in try await receive(3, from: backend.consume(keys: [key], group: ConsumerGroup("billing"))) {
            try await message.ack()
        }
        try await backend.publish(["order": 3], to: key)

        let late = try await receive(1, from: backend.consume(keys: [key], group: ConsumerGroup("audit")))
        XCTAssertEqual(late.map(\.payload), [["order": 3]], "the three messages billing acknowledged are gone")
        let billing = try await receive(1, from: backend.consume(keys: [key], group: ConsumerGroup("billing")))
        XCTAssertEqual(billing.map(\.payload), [["order": 3]])

        let unacknowledged = try await receive(1, from: backend.consume(keys: [key], group: ConsumerGroup("search")))
        XCTAssertEqual(unacknowledged.map(\.payload), [["order": 3]], "audit has not acknowledged order 3, so it stays")
        await backend.close()
    }

    /// A message whose last allowed delivery times out (no `nack`) also ends in the dead-letter key.
    func testTimedOutLastDeliveryIsDeadLettered() async throws {
        let backend = try TemplateBackend(configuration: .init(visibilityTimeout: .milliseconds(100), maxDeliveries: 2))
        let key = try MessageQueueKey("slow")
        let group = try ConsumerGroup("workers")
        try await backend.publish(["job": 1], to: key)

        let deliveries = try await receive(2, from: backend.consume(keys: [key], group: group))
        XCTAssertEqual(deliveries.map(\.deliveryCount), [1, 2])
        let letters = try await receive(1, from: backend.consume(keys: [key.deadLetterKey], group: group))
        let letter = try DeadLetter(from: try XCTUnwrap(letters.first).payload)
        XCTAssertEqual(letter.key, key)
        XCTAssertEqual(letter.deliveryCount, 2)
        XCTAssertEqual(letter.reason, .maxDeliveries)
        XCTAssertNil(letter.lastError)
        XCTAssertEqual(letter.payload, ["job": 1])
        await backend.close()
    }

    /// Once a delivery timed out and the message went out again, a `nack` of the old delivery
    /// changes nothing, and acknowledging the new one ends it.
    func testStaleNackIsIgnored() async throws {
        let backend = try TemplateBackend(configuration: .init(visibilityTimeout: .milliseconds(100), maxDeliveries: 5))
        let key = try MessageQueueKey("jobs")
        try await backend.publish(["job": 1], to: key)
        let messages = backend.consume(keys: [key], group: nil)

        let deliveries = try await receive(2, from: messages)
        try await deliveries[0].nack()
        try await deliveries[1].ack()
        let more = try await receive(upTo: 1, from: messages, within: .milliseconds(300))
        XCTAssertTrue(more.isEmpty, "the stale nack brought the message back: \(more.map(\.deliveryCount))")
        await backend.close()
    }

    // MARK: Helpers

    /// The first `count` messages from `messages`, failing after 5 s.
    private func receive(_ count: Int, from messages: TemplateBackend.Messages) async throws -> [MessageQueueMessage] {
        let received = try await receive(upTo: count, from: messages, within: .seconds(5))
        XCTAssertEqual(received.count, count, "messages received within 5 s")
        return received
    }

    /// Up to `count` messages, taking what arrives within `timeout`.
    private func receive(upTo count: Int, from messages: TemplateBackend.Messages, within timeout: Duration) async throws -> [MessageQueueMessage] {
        try await withThrowingTaskGroup(of: [MessageQueueMessage]?.self) { tasks in
            tasks.addTask {
                var received: [MessageQueueMessage] = []
                for try await message in messages {
                    received.append(message)
                    if received.count == count { break }
                }
                return received
            }
            tasks.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            let first = try await tasks.next()!
            tasks.cancelAll()
            return first ?? []
        }
    }
}

/// Keeps the messages of the warnings logged through ``handler``, to check what the loader reports.
private final class CapturedWarnings: Sendable {
    private let storage = Mutex<[String]>([])

    var messages: [String] { storage.withLock { $0 } }

    var handler: some LogHandler { Handler(capture: self) }

    private struct Handler: LogHandler {
        let capture: CapturedWarnings
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            guard event.level == .warning else { return }
            capture.storage.withLock { $0.append("\(event.message)") }
        }
    }
}
