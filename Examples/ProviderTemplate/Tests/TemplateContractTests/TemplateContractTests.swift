import AbstractBackend
import AbstractBackendContractTests
import AbstractBackendTemplate
import XCTest

/// Runs Abstract Backend's contract suite against ``TemplateBackend``.
///
/// Each backend is its own world, so a fresh instance is isolated without using the namespace.
/// XCTest on Linux does not run inherited test methods, so this class declares one `test…`
/// method per ``ContractCase``; `testDeclaresEveryContractCase` fails when a release of the
/// suite adds a case that is missing here, and prints the line to add.
final class TemplateContractTests: MessageQueueContractTests {
    override func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend {
        try TemplateBackend(configuration: .init(visibilityTimeout: options.visibilityTimeout, maxDeliveries: options.maxDeliveries))
    }

    override var provider: MessageQueueProvider? { TemplateBackend.provider }

    override func environment(for options: ContractOptions) -> [String: String] {
        let (seconds, attoseconds) = options.visibilityTimeout.components
        return [
            TemplateBackend.Variable.visibilityTimeout: "\(seconds * 1000 + attoseconds / 1_000_000_000_000_000)ms",
            TemplateBackend.Variable.maxDeliveries: String(options.maxDeliveries),
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

    /// The guard: reads this file and fails for every ``ContractCase`` without a `test…` method,
    /// so a new case in the suite cannot go unrun.
    func testDeclaresEveryContractCase() throws {
        let source = try String(contentsOfFile: #filePath, encoding: .utf8)
        let missing = ContractCase.allCases.filter { !source.contains("func \($0.testName)()") }
        XCTAssertTrue(
            missing.isEmpty,
            "declare one test method per contract case; add to \(type(of: self)):\n"
                + missing.map { "    func \($0.testName)() async throws { try await \($0.checkName)() }" }.joined(separator: "\n")
        )
    }
}
