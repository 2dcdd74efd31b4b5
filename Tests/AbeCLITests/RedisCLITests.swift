import Foundation
import XCTest

/// `abe` against the Redis server `REDIS_URL` names (Scripts/test starts a private one). Each
/// test works under a key prefix of its own; nothing is flushed.
final class RedisCLITests: ProviderScenarios {
    override var providerName: String { "redis" }

    private var url = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard let url = ProcessInfo.processInfo.environment["REDIS_URL"], !url.isEmpty else {
            throw XCTSkip("REDIS_URL is not set; Scripts/test sets it to a private redis-server")
        }
        self.url = url
        environment = ["REDIS_URL": url, "ABE_REDIS_KEY_PREFIX": "abe-cli-test/\(UUID().uuidString)/"]
    }

    func testPublishStatsConsumeRoundTrip() throws { try checkPublishStatsConsumeRoundTrip() }
    func testJSONLinesFromStandardInput() throws { try checkJSONLinesFromStandardInput() }
    func testPrintIDs() throws { try checkPrintIDs() }
    func testDoctor() throws { try checkDoctor() }
    func testDataAndUsageErrors() throws { try checkDataAndUsageErrors() }
    func testOutputFailure() throws { try checkOutputFailure() }

    func testDeadLetters() throws {
        // Redis claims by idle time, so the claiming consumer's timeout counts; the first one
        // keeps the default, or it would find its own fetch expired before handing it out.
        try checkDeadLetters(
            first: [:],
            second: ["ABE_REDIS_MAX_DELIVERIES": "1", "ABE_REDIS_VISIBILITY_TIMEOUT": "1ms"]
        )
    }

    /// The Redis lines of `abe bench` report the CPU time of this process and of the server.
    func testBenchReportsTheServersCPUTime() throws {
        let run = try abe(["bench", "--backend", "redis", "--scenario", "publish-concurrent", "--scenario", "consume", "--redis-messages", "2000"])
        let lines = try run.jsonLines()
        XCTAssertEqual(lines.map { $0["scenario"] as? String }, ["publish-concurrent", "consume"], run.summary)
        for line in lines {
            XCTAssertEqual(line["backend"] as? String, "redis", run.summary)
            XCTAssertGreaterThan(line["cpu_us_per_msg"] as? Double ?? 0, 0, run.summary)
            XCTAssertGreaterThan(line["server_cpu_us_per_msg"] as? Double ?? 0, 0, run.summary)
        }
    }

    /// Doctor shows the server's version and persistence, and the URL without its password.
    func testDoctorReportsTheServer() throws {
        let run = try abe(["doctor"])
        XCTAssertTrue(run.output.contains("PING answered"), run.summary)
        XCTAssertTrue(run.output.contains("Redis "), run.summary)
        XCTAssertTrue(run.output.contains("persistence"), run.summary)
    }

    /// A password the server does not expect is a configuration error, and is never printed.
    func testWrongPasswordIsAConfigurationError() throws {
        let secret = "cli-test-secret-\(UUID().uuidString.prefix(6))"
        secrets = [secret]
        let components = try XCTUnwrap(URLComponents(string: url))
        let withPassword = "redis://:\(secret)@\(components.host ?? "127.0.0.1"):\(components.port ?? 6379)/0"
        environment["REDIS_URL"] = withPassword
        let doctor = try abe(["doctor"], expect: 3)
        XCTAssertTrue(doctor.output.contains("redis://:***@"), doctor.summary)
        try abe(["stats"], expect: 3)
        try abe(["publish", uniqueKey("k"), "{}"], expect: 3)

        environment["REDIS_URL"] = url
        environment["REDIS_PASSWORD"] = secret
        let viaVariable = try abe(["doctor"], expect: 3)
        XCTAssertTrue(viaVariable.output.contains("REDIS_PASSWORD                ***"), viaVariable.summary)
    }
}
