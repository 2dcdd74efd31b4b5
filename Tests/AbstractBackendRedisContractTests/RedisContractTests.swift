import AbstractBackend
import AbstractBackendContractTests
import AbstractBackendRedis
import Foundation
import XCTest

/// Runs the shared contract suite against ``RedisBackend`` on the server `REDIS_URL` names.
///
/// Without `REDIS_URL` every case is skipped with a message saying how to enable it;
/// `Scripts/test` starts its own redis-server and fails if this runner was skipped. Each test
/// gets its namespace as ``RedisConfiguration/keyPrefix``, so tests sharing the server never
/// see each other's streams, groups or key registry.
final class RedisContractTests: MessageQueueContractTests {
    private var redisURL: String?

    override func setUp() async throws {
        try await super.setUp()
        guard let url = ProcessInfo.processInfo.environment[RedisConfiguration.Variable.url], !url.isEmpty else {
            throw XCTSkip("REDIS_URL is not set: run Scripts/test, which starts its own redis-server, or export REDIS_URL=redis://127.0.0.1:6379/0 for a server you own")
        }
        redisURL = url
    }

    override func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend {
        try RedisBackend.fromEnvironment(environment(for: options))
    }

    override var provider: MessageQueueProvider? { RedisBackend.provider }

    override func environment(for options: ContractOptions) -> [String: String] {
        let timeout = options.visibilityTimeout.components
        let milliseconds = timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000
        return [
            RedisConfiguration.Variable.url: redisURL ?? "",
            RedisConfiguration.Variable.visibilityTimeout: "\(milliseconds)ms",
            RedisConfiguration.Variable.maxDeliveries: String(options.maxDeliveries),
            RedisConfiguration.Variable.keyPrefix: "\(options.namespace)/",
        ]
    }

    func testPublishBeforeConsume() async throws { try await checkPublishBeforeConsume() }
    func testSeveralKeys() async throws { try await checkSeveralKeys() }
    func testGroupDelivery() async throws { try await checkGroupDelivery() }
    func testFifoPerKey() async throws { try await checkFifoPerKey() }
    func testComplexJSONRoundTrip() async throws { try await checkComplexJSONRoundTrip() }
    func testFromEnvironment() async throws { try await checkFromEnvironment() }
    func testCompetingConsumers() async throws { try await checkCompetingConsumers() }
    func testFanOutGroups() async throws { try await checkFanOutGroups() }
    func testVisibilityTimeoutRedelivers() async throws { try await checkVisibilityTimeoutRedelivers() }
    func testNackRedelivers() async throws { try await checkNackRedelivers() }
    func testDeadLetterAfterMaxDeliveries() async throws { try await checkDeadLetterAfterMaxDeliveries() }
    func testCancellationPrompt() async throws { try await checkCancellationPrompt() }
    func testBatchPublish() async throws { try await checkBatchPublish() }
    func testConcurrentPublishers() async throws { try await checkConcurrentPublishers() }
    func testLargePayload() async throws { try await checkLargePayload() }
    func testExplicitKeysFilter() async throws { try await checkExplicitKeysFilter() }
    func testNewGroupStartsAtOldestRetained() async throws { try await checkNewGroupStartsAtOldestRetained() }
    func testCloseReleases() async throws { try await checkCloseReleases() }
    func testInvalidInputRejected() async throws { try await checkInvalidInputRejected() }
    func testConsumerSurvivesHandlerErrors() async throws { try await checkConsumerSurvivesHandlerErrors() }
    func testConsumerKeepsOrderWithConcurrencyOne() async throws { try await checkConsumerKeepsOrderWithConcurrencyOne() }
    func testConsumerGracefulShutdown() async throws { try await checkConsumerGracefulShutdown() }
    func testConsumerSecondRunRefused() async throws { try await checkConsumerSecondRunRefused() }
    func testConsumerGroupReachesProvider() async throws { try await checkConsumerGroupReachesProvider() }
    func testConsumerRetriesEndInDeadLetter() async throws { try await checkConsumerRetriesEndInDeadLetter() }
    func testConsumerConcurrencyLimit() async throws { try await checkConsumerConcurrencyLimit() }
}
