import Foundation
import XCTest

/// How `abe` reports a wrong environment: the loader's errors, an unreachable or malformed
/// `REDIS_URL`, without ever printing a credential. No server needed.
final class ConfigurationCLITests: AbeTestCase {
    func testHelpExplainsTheExitStatuses() throws {
        let help = try abe(["--help"])
        for status in ["0  success", "2  usage", "3  configuration", "4  unavailable", "5  data"] {
            XCTAssertTrue(help.output.contains(status), "no \"\(status)\" in \(help.summary)")
        }
        for command in ["publish", "consume", "stats", "doctor", "bench", "demo"] {
            let commandHelp = try abe([command, "--help"])
            XCTAssertTrue(commandHelp.output.contains("USAGE: abe \(command)"), commandHelp.summary)
        }
    }

    func testUnknownProviderIsAConfigurationError() throws {
        environment = ["QUEUE_BACKEND": "nope"]
        for command in [["stats"], ["doctor"], ["consume", "--count", "1"], ["publish", "k", "{}"]] {
            let run = try abe(command, expect: 3)
            XCTAssertTrue(run.error.contains("QUEUE_BACKEND=\"nope\" names no provider"), run.summary)
            XCTAssertLessThanOrEqual(run.error.split(separator: "\n").count, 2, run.summary)
        }
        let flag = try abe(["stats", "--backend", "nope"], expect: 3)
        XCTAssertTrue(flag.error.contains("names no provider"), flag.summary)
    }

    /// Nothing listens on port 1: every command says so (4) without the password.
    func testUnreachableRedisIsUnavailable() throws {
        secrets = ["secret"]
        environment = ["REDIS_URL": "redis://:secret@127.0.0.1:1"]
        let doctor = try abe(["doctor"], expect: 4)
        XCTAssertTrue(doctor.output.contains("redis://:***@127.0.0.1:1"), doctor.summary)
        XCTAssertTrue(doctor.error.contains("cannot connect to Redis at 127.0.0.1:1"), doctor.summary)
        try abe(["stats"], expect: 4)
        try abe(["publish", "k", "{}"], expect: 4)
        try abe(["consume", "--count", "1"], expect: 4)
        try abe(["stats", "--redis-url", "redis://:secret@127.0.0.1:1/0"], environment: ["REDIS_URL": ""], expect: 4)
    }

    /// A URL that does not parse is a configuration error (3), named but redacted.
    func testMalformedRedisURLIsAConfigurationError() throws {
        secrets = ["secret"]
        environment = ["REDIS_URL": "redis://:secret@127.0.0.1:63x9/0"]
        let doctor = try abe(["doctor"], expect: 3)
        XCTAssertTrue(doctor.error.contains("REDIS_URL"), doctor.summary)
        try abe(["stats"], expect: 3)
        try abe(["publish", "k", "{}"], expect: 3)
        environment = ["REDIS_URL": "rediss://:secret@example.invalid"]
        let tls = try abe(["doctor"], expect: 3)
        XCTAssertTrue(tls.error.contains("TLS"), tls.summary)
    }

    /// The in-memory provider has no message ids to print.
    func testPrintIDsNeedsADurableProvider() throws {
        environment = ["QUEUE_BACKEND": "memory"]
        let run = try abe(["publish", "k", "{}", "--print-ids"], expect: 3)
        XCTAssertTrue(run.error.contains("--print-ids"), run.summary)
        let doctor = try abe(["doctor"])
        XCTAssertTrue(doctor.output.contains("warn"), doctor.summary)
    }
}
