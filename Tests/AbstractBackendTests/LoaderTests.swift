import TestSupport
import AbstractBackend
import AbstractBackendInMemory
import XCTest

final class LoaderTests: XCTestCase {
    /// A provider under another name, backed by the real in-memory provider, configured by `variable`.
    private func provider(
        _ name: String,
        variable: String,
        product: String = "ThirdPartyProduct",
        deprecation: Deprecation? = nil
    ) -> MessageQueueProvider {
        MessageQueueProvider(
            name: name,
            product: product,
            summary: "test provider \(name)",
            environmentVariables: [EnvironmentVariable(variable, "configures \(name)")],
            deprecation: deprecation,
            isConfigured: { $0[variable] != nil },
            makeBackend: { _ in InMemoryBackend() }
        )
    }

    func testQueueBackendSelectsNamedProvider() throws {
        let providers = [provider("alpha", variable: "ALPHA_URL"), provider("beta", variable: "BETA_URL"), InMemoryBackend.provider]
        let (chosen, reason) = try selectProvider(providers: providers, environment: ["QUEUE_BACKEND": "beta", "ALPHA_URL": "x"])
        XCTAssertEqual(chosen.name, "beta")
        XCTAssertEqual(reason, "QUEUE_BACKEND=beta")
    }

    func testQueueBackendIsCaseInsensitiveTrimmedAndAcceptsAliases() throws {
        XCTAssertEqual(try selectProvider(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": " Memory "]).provider.name, "memory")
        XCTAssertEqual(try selectProvider(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": "in-memory"]).provider.name, "memory")
    }

    func testQueueBackendNamingAKnownButUnlinkedProviderNamesTheProduct() {
        for name in ["redis", "redis-streams"] {
            XCTAssertThrowsError(try selectProvider(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": name])) { error in
                let error = error as! MessageQueueError
                XCTAssertEqual(error.code, .unknownProvider)
                XCTAssertTrue(error.message.contains("AbstractBackendRedis"), error.message)
                XCTAssertTrue(error.message.contains("RedisBackend.provider"), error.message)
                XCTAssertTrue(error.message.contains("linked: memory"), error.message)
            }
        }
    }

    func testQueueBackendNamingAnUnknownProviderListsLinkedAndAvailable() {
        XCTAssertThrowsError(try selectProvider(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": "nope"])) { error in
            let error = error as! MessageQueueError
            XCTAssertEqual(error.code, .unknownProvider)
            XCTAssertTrue(error.message.contains("\"nope\""), error.message)
            XCTAssertTrue(error.message.contains("linked: memory"), error.message)
            XCTAssertTrue(error.message.contains("file-spool (product AbstractBackendFileSpool)"), error.message)
        }
    }

    func testEmptyQueueBackendIsAConfigurationError() {
        XCTAssertThrowsError(try selectProvider(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": "  "])) { error in
            XCTAssertEqual((error as! MessageQueueError).code, .invalidConfiguration)
        }
    }

    func testFirstConfiguredProviderWinsInListOrder() throws {
        let providers = [provider("alpha", variable: "ALPHA_URL"), provider("beta", variable: "BETA_URL"), InMemoryBackend.provider]
        let both = try selectProvider(providers: providers, environment: ["BETA_URL": "b", "ALPHA_URL": "a"])
        XCTAssertEqual(both.provider.name, "alpha")
        XCTAssertEqual(both.reason, "configured by ALPHA_URL")
        XCTAssertEqual(try selectProvider(providers: providers, environment: ["BETA_URL": "b"]).provider.name, "beta")
    }

    func testFallbackIsChosenLastWithAWarning() throws {
        let logs = CapturedLogs()
        let providers = [provider("alpha", variable: "ALPHA_URL"), InMemoryBackend.provider]
        let backend = try loadBackend(providers: providers, environment: [:], logger: logs.logger())
        XCTAssertTrue(backend is InMemoryBackend)
        let warnings = logs.records.filter { $0.level == .warning }
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].message.contains("development only"), warnings[0].message)
    }

    func testExplicitlySelectedFallbackDoesNotWarn() throws {
        let logs = CapturedLogs()
        _ = try loadBackend(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": "memory"], logger: logs.logger())
        XCTAssertTrue(logs.records.filter { $0.level == .warning }.isEmpty)
    }

    func testNothingConfiguredAndNoFallbackSaysWhatToSet() {
        XCTAssertThrowsError(try selectProvider(providers: [provider("alpha", variable: "ALPHA_URL")], environment: [:])) { error in
            let error = error as! MessageQueueError
            XCTAssertEqual(error.code, .noProvider)
            XCTAssertTrue(error.message.contains("ALPHA_URL"), error.message)
            XCTAssertTrue(error.message.contains("QUEUE_BACKEND"), error.message)
        }
        XCTAssertThrowsError(try selectProvider(providers: [], environment: [:])) { error in
            XCTAssertEqual((error as! MessageQueueError).code, .noProvider)
        }
    }

    func testDeprecatedProviderWarnsOnceNamingItsReplacement() throws {
        let logs = CapturedLogs()
        let name = "retired-\(UInt32.random(in: 0...UInt32.max))"
        let retired = provider(name, variable: "RETIRED_URL", deprecation: Deprecation(replacement: "memory", message: "It is removed in 2.0."))
        for _ in 0..<3 {
            _ = try loadBackend(providers: [retired], environment: ["RETIRED_URL": "x"], logger: logs.logger())
        }
        let warnings = logs.records.filter { $0.level == .warning }
        XCTAssertEqual(warnings.count, 1)
        XCTAssertTrue(warnings[0].message.contains("deprecated"), warnings[0].message)
        XCTAssertEqual(warnings[0].metadata["replacement"], "memory")
    }

    func testFactoryErrorsReachTheCaller() {
        XCTAssertThrowsError(
            try loadBackend(providers: [InMemoryBackend.provider], environment: ["QUEUE_BACKEND": "memory", "ABE_MEMORY_CAPACITY": "lots"])
        ) { error in
            let error = error as! MessageQueueError
            XCTAssertEqual(error.code, .invalidConfiguration)
            XCTAssertTrue(error.message.hasPrefix("ABE_MEMORY_CAPACITY=\"lots\""), error.message)
        }
    }
}
