import AbstractBackend
import AbstractBackendContractTests
import AbstractBackendInMemory
import XCTest

/// Runs the shared contract suite against ``InMemoryBackend``.
///
/// Each in-memory backend is its own world, so a fresh instance is isolated without using the
/// namespace. One `test…` method per ``ContractCase``, because XCTest on Linux does not run
/// inherited test methods; `Scripts/check-contract-runners` fails when one is missing.
final class InMemoryContractTests: MessageQueueContractTests {
    override func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend {
        var configuration = InMemoryBackend.Configuration()
        configuration.visibilityTimeout = options.visibilityTimeout
        configuration.maxDeliveries = options.maxDeliveries
        return InMemoryBackend(configuration: configuration)
    }

    override var provider: MessageQueueProvider? { InMemoryBackend.provider }

    override func environment(for options: ContractOptions) -> [String: String] {
        let timeout = options.visibilityTimeout.components
        let milliseconds = timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000
        return [
            InMemoryBackend.Variable.visibilityTimeout: "\(milliseconds)ms",
            InMemoryBackend.Variable.maxDeliveries: String(options.maxDeliveries),
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
