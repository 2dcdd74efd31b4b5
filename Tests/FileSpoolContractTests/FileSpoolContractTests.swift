import AbstractBackend
import AbstractBackendContractTests
import AbstractBackendFileSpool
import Foundation
import XCTest

/// Runs the shared contract suite against ``FileSpoolBackend``, each test in a spool directory of
/// its own under the system's temporary directory, removed afterwards.
final class FileSpoolContractTests: MessageQueueContractTests {
    private lazy var spoolDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-spool-\(namespace)").path

    override func tearDown() async throws {
        try? FileManager.default.removeItem(atPath: spoolDirectory)
        try await super.tearDown()
    }

    override func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend {
        try FileSpoolBackend.fromEnvironment(environment(for: options))
    }

    override var provider: MessageQueueProvider? { FileSpoolBackend.provider }

    override func environment(for options: ContractOptions) -> [String: String] {
        let timeout = options.visibilityTimeout.components
        let milliseconds = timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000
        return [
            FileSpoolConfiguration.Variable.directory: spoolDirectory,
            FileSpoolConfiguration.Variable.visibilityTimeout: "\(milliseconds)ms",
            FileSpoolConfiguration.Variable.maxDeliveries: String(options.maxDeliveries),
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
