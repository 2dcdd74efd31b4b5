import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis
import CoreMetrics
import Foundation
import MetricsTestKit
import Synchronization
import XCTest

/// Every provider records the documented metrics with the documented dimensions, and the
/// documentation lists exactly the metrics the providers and `MessageConsumer` record.
///
/// The same scenario runs on each provider: three messages (a batch of two, then one), consumed
/// by a `MessageConsumer` whose handler succeeds on `ok`, fails once on `once` and always on
/// `always`, with `maxDeliveries` 2. That makes 5 deliveries (2 of them redeliveries), 2 acks,
/// 3 nacks and 1 dead letter — counted exactly, per key and group.
final class ProviderMetricsTests: XCTestCase {
    /// One factory for the whole test process: swift-metrics can be bootstrapped only once.
    /// Each test uses its own key, so tests do not see each other's counts.
    static let metrics: TestMetrics = {
        let metrics = TestMetrics()
        MetricsSystem.bootstrap(metrics)
        return metrics
    }()

    private let group = try! ConsumerGroup("metrics")

    override func setUp() {
        super.setUp()
        _ = Self.metrics
    }

    func testInMemoryRecordsTheDocumentedMetrics() async throws {
        var configuration = InMemoryBackend.Configuration()
        configuration.visibilityTimeout = .seconds(30)
        configuration.maxDeliveries = 2
        try await exercise(InMemoryBackend(configuration: configuration))
    }

    func testFileSpoolRecordsTheDocumentedMetrics() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-metrics-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = FileSpoolConfiguration(directory: directory, fsync: .never, visibilityTimeout: .seconds(30), maxDeliveries: 2)
        try await exercise(FileSpoolBackend(configuration: configuration))
    }

    func testRedisRecordsTheDocumentedMetrics() async throws {
        guard let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else {
            throw XCTSkip("REDIS_URL is not set; Scripts/test starts a redis-server and sets it")
        }
        try await exercise(RedisBackend.fromEnvironment([
            RedisConfiguration.Variable.url: url,
            RedisConfiguration.Variable.visibilityTimeout: "30s",
            RedisConfiguration.Variable.maxDeliveries: "2",
        ]))
    }

    /// The metric tables in docs/observability.md and in `MessageQueueMetrics`'s documentation
    /// name exactly the labels a provider and `MessageConsumer` record.
    func testDocumentedMetricNamesAreTheRecordedOnes() async throws {
        let key = try await exercise(InMemoryBackend(configuration: {
            var configuration = InMemoryBackend.Configuration()
            configuration.maxDeliveries = 2
            return configuration
        }()))
        let observed = Set(
            Self.metrics.counters.filter { $0.dimensions.contains { $0 == ("key", key.rawValue) } }.map(\.label)
                + Self.metrics.timers.filter { $0.dimensions.contains { $0 == ("key", key.rawValue) } }.map(\.label)
        )
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for document in ["docs/observability.md", "Sources/AbstractBackend/MessageQueueMetrics.swift"] {
            let text = try String(contentsOf: root.appendingPathComponent(document), encoding: .utf8)
            XCTAssertEqual(Self.documentedLabels(in: text), observed, "the metric table in \(document) differs from what is recorded")
        }
    }

    // MARK: The scenario

    @discardableResult
    private func exercise(_ backend: some MessageQueueBackend) async throws -> MessageQueueKey {
        let provider = type(of: backend).providerName
        let key = try MessageQueueKey("metrics-\(provider)-\(UUID().uuidString.prefix(8))")
        let ok: MessageQueuePayload = ["ok": true]
        let once: MessageQueuePayload = ["once": true]
        try await backend.publish([(key, ok), (key, once)])
        try await backend.publish(["always": true], to: key)

        let consumer = try MessageConsumer(backend: backend, group: group, keys: [key], retryPolicy: .immediate) { message in
            if message.payload["always"] != nil { throw Failure(description: "always fails") }
            if message.payload["once"] != nil && message.deliveryCount == 1 { throw Failure(description: "fails once") }
        }
        let running = Task { try await consumer.run() }
        let keyed = [("provider", provider), ("key", key.rawValue)]
        let grouped = keyed + [("group", group.name)]
        let settled = try await poll {
            Self.count("abe_messages_acked_total", grouped) == 2 && Self.count("abe_messages_dead_lettered_total", grouped) == 1
        }
        consumer.shutdown()
        try await running.value
        await backend.close()
        XCTAssertTrue(settled, "\(provider): the scenario did not settle within 10 s")

        XCTAssertEqual(count("abe_messages_published_total", keyed), 3, provider)
        XCTAssertEqual(timerValues("abe_publish_duration", keyed).count, 2, "\(provider): one publish duration per call")
        XCTAssertEqual(count("abe_messages_delivered_total", grouped), 5, provider)
        XCTAssertEqual(count("abe_messages_redelivered_total", grouped), 2, provider)
        XCTAssertEqual(count("abe_messages_acked_total", grouped), 2, provider)
        XCTAssertEqual(count("abe_messages_nacked_total", grouped), 3, provider)
        XCTAssertEqual(count("abe_messages_dead_lettered_total", grouped), 1, provider)
        XCTAssertEqual(timerValues("abe_handler_duration", grouped + [("outcome", "success")]).count, 2, provider)
        XCTAssertEqual(timerValues("abe_handler_duration", grouped + [("outcome", "failure")]).count, 3, provider)
        return key
    }

    private func count(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
        Self.count(label, dimensions)
    }

    private static func count(_ label: String, _ dimensions: [(String, String)]) -> Int64 {
        Self.metrics.counterTotal(label: label, dimensions: dimensions)
    }

    private func timerValues(_ label: String, _ dimensions: [(String, String)]) -> [Int64] {
        Self.metrics.timers(label: label, dimensions: dimensions).flatMap(\.values)
    }

    private func poll(timeout: Duration = .seconds(10), _ condition: @Sendable () -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            if ContinuousClock.now >= deadline { return false }
            try await Task.sleep(for: .milliseconds(10))
        }
        return true
    }

    /// The labels in the first column of a metric table: rows starting with "| `abe_".
    static func documentedLabels(in text: String) -> Set<String> {
        var labels = Set<String>()
        for line in text.split(separator: "\n") {
            let row = line.drop { $0 == " " || $0 == "/" }
            guard row.hasPrefix("| `abe_"), let end = row.dropFirst(3).firstIndex(of: "`") else { continue }
            labels.insert(String(row[row.index(row.startIndex, offsetBy: 3)..<end]))
        }
        return labels
    }

    private struct Failure: Error, CustomStringConvertible {
        let description: String
    }
}
