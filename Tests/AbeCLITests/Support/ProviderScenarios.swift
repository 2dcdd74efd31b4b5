import Foundation
import XCTest

/// The scenarios both providers' CLI tests run. XCTest on Linux does not run inherited `test…`
/// methods, so each provider's class declares one `test…` per scenario that calls the matching
/// `check…` here, after setting ``AbeTestCase/environment`` to select its provider.
class ProviderScenarios: AbeTestCase {
    /// The provider's name as `abe doctor` and `stats --json` print it.
    var providerName: String { "" }

    /// publish (argument and standard input) → stats → consume → stats, acknowledged and not.
    func checkPublishStatsConsumeRoundTrip() throws {
        let key = uniqueKey("orders")
        try abe(["publish", key, #"{"n": 1, "text": "zwölf \u0000 🚀"}"#])
        try abe(["publish", key, "-"], input: "{\"n\":2}\n{\"n\":3}\n")

        var stats = try stats([])
        XCTAssertEqual(stats[key]?["length"] as? Int, 3, "\(stats)")
        XCTAssertEqual((stats[key]?["groups"] as? [Any])?.count, 0, "\(stats)")
        XCTAssertEqual(stats[key]?["deadLetters"] as? Int, 0, "\(stats)")

        let consumed = try abe(["consume", "--key", key, "--group", "billing", "--count", "3"])
        XCTAssertEqual(try numbers(consumed), [1, 2, 3])
        let messages = try consumed.jsonLines()
        XCTAssertEqual(messages.map { $0["key"] as? String }, [key, key, key])
        XCTAssertEqual(messages.map { $0["deliveryCount"] as? Int }, [1, 1, 1])
        XCTAssertEqual((messages.first?["payload"] as? [String: Any])?["text"] as? String, "zwölf \u{0000} 🚀")
        XCTAssertEqual(Set(messages.compactMap { $0["id"] as? String }).count, 3, consumed.summary)

        stats = try self.stats([key])
        var billing = try group("billing", in: stats[key])
        XCTAssertEqual(billing["pending"] as? Int, 0, "\(billing)")
        XCTAssertEqual(billing["undelivered"] as? Int, 0, "\(billing)")
        XCTAssertTrue(billing["oldestPendingSeconds"] is NSNull, "\(billing)")

        // Everything was acknowledged: the group has nothing new, and the run ends at --timeout.
        let idle = try abe(["consume", "--key", key, "--group", "billing", "--timeout", "500ms"])
        XCTAssertEqual(idle.lines, [], idle.summary)

        // Another group sees every message; unacknowledged, they stay pending.
        let unacknowledged = try abe(["consume", "--key", key, "--group", "audit", "--count", "3", "--no-ack"])
        XCTAssertEqual(try numbers(unacknowledged), [1, 2, 3])
        stats = try self.stats([key])
        let audit = try group("audit", in: stats[key])
        XCTAssertEqual(audit["pending"] as? Int, 3, "\(audit)")
        XCTAssertNotNil(audit["oldestPendingSeconds"] as? Double, "\(audit)")
        billing = try group("billing", in: stats[key])
        XCTAssertEqual(billing["pending"] as? Int, 0, "\(billing)")

        let table = try abe(["stats", "--key", key])
        XCTAssertTrue(table.output.contains("OLDEST PENDING"), table.summary)
        XCTAssertTrue(table.output.contains("audit"), table.summary)
    }

    /// JSON lines from standard input: blank lines and CRLF are fine; an invalid line stops the
    /// run (nothing after it published) unless --skip-invalid.
    func checkJSONLinesFromStandardInput() throws {
        let key = uniqueKey("lines")
        let input = "{\"n\":1}\n\n{\"n\":2}\r\nnot json\n{\"n\":4}\n"
        let stopped = try abe(["publish", key, "-"], input: input, expect: 5)
        XCTAssertTrue(stopped.error.contains("line 4"), stopped.summary)
        XCTAssertTrue(stopped.error.contains("--skip-invalid"), stopped.summary)
        XCTAssertLessThanOrEqual(stopped.error.split(separator: "\n").count, 2, stopped.summary)
        XCTAssertEqual(try stats([key])[key]?["length"] as? Int, 2)

        let skipped = try abe(["publish", key, "-", "--skip-invalid"], input: input)
        XCTAssertTrue(skipped.error.contains("line 4 skipped"), skipped.summary)
        XCTAssertEqual(try stats([key])[key]?["length"] as? Int, 5)

        let consumed = try abe(["consume", "--key", key, "--count", "5"])
        XCTAssertEqual(try numbers(consumed), [1, 2, 1, 2, 4])

        // More lines than one batch, and a last line without a line break.
        let many = (1...600).map { "{\"n\":\($0)}" }.joined(separator: "\n")
        let bulk = uniqueKey("bulk")
        try abe(["publish", bulk, "-", "--batch-size", "64"], input: many)
        XCTAssertEqual(try stats([bulk])[bulk]?["length"] as? Int, 600)
    }

    /// `--print-ids` prints the ids `consume` later shows.
    func checkPrintIDs() throws {
        let key = uniqueKey("ids")
        let published = try abe(["publish", key, "-", "--print-ids"], input: "{\"n\":1}\n{\"n\":2}\n")
        let single = try abe(["publish", key, #"{"n":3}"#, "--print-ids"])
        XCTAssertEqual(published.lines.count, 2, published.summary)
        XCTAssertEqual(single.lines.count, 1, single.summary)
        let consumed = try abe(["consume", "--key", key, "--count", "3"])
        XCTAssertEqual(try consumed.jsonLines().map { $0["id"] as? String }, published.lines + single.lines)
    }

    /// A message past its last delivery lands in `<key>:dead-letter`, which stats counts and
    /// consume reads by name. The first consumer runs with `first` (its delivery is left
    /// unacknowledged), the second with `second`, which must make that delivery expired and the
    /// last one allowed; everything else runs with the defaults.
    func checkDeadLetters(first: [String: String], second: [String: String]) throws {
        let key = uniqueKey("failing")
        try abe(["publish", key, #"{"n":1}"#])
        try abe(["consume", "--key", key, "--count", "1", "--no-ack"], environment: first)
        // Its visibility timeout has passed: this member finds it exhausted and dead-letters it.
        let after = try abe(["consume", "--key", key, "--timeout", "1s"], environment: second)
        XCTAssertEqual(after.lines, [], after.summary)

        let stats = try stats([key])
        XCTAssertEqual(stats[key]?["deadLetters"] as? Int, 1, "\(stats)")
        let letters = try abe(["consume", "--key", key + ":dead-letter", "--count", "1"]).jsonLines()
        let envelope = try XCTUnwrap(letters.first?["payload"] as? [String: Any])
        XCTAssertEqual(envelope["reason"] as? String, "max-deliveries", "\(envelope)")
        XCTAssertEqual((envelope["payload"] as? [String: Any])?["n"] as? Int, 1, "\(envelope)")
    }

    /// `abe doctor` names the provider and finds nothing wrong.
    func checkDoctor() throws {
        let run = try abe(["doctor"])
        XCTAssertTrue(run.output.contains("provider  \(providerName)"), run.summary)
        XCTAssertTrue(run.output.contains("doctor: ok"), run.summary)
        XCTAssertFalse(run.output.contains("FAIL"), run.summary)
    }

    /// Status 5 for a message that is not a JSON object, 2 for usage errors.
    func checkDataAndUsageErrors() throws {
        let key = uniqueKey("errors")
        let array = try abe(["publish", key, "[1, 2]"], expect: 5)
        XCTAssertTrue(array.error.contains("not a JSON object"), array.summary)
        try abe(["publish", key, "{\"n\": "], expect: 5)
        try abe(["publish", key], expect: 2)
        try abe(["publish", "bad\tkey", "{}"], expect: 2)
        try abe(["publish", key, "{}", "--skip-invalid"], expect: 2)
        try abe(["consume", "--count", "0"], expect: 2)
        try abe(["consume", "--timeout", "soon"], expect: 2)
        try abe(["consume", "--group", ""], expect: 2)
        try abe(["stats", "--no-such-option"], expect: 2)
        try abe(["frobnicate"], expect: 2)
        try abe(["stats", "--spool-dir", directory + "/x", "--redis-url", "redis://127.0.0.1"], expect: 2)
        XCTAssertEqual(try stats([key])[key]?["length"] as? Int, 0)
    }

    /// Status 1 when the consumed message cannot be written (a full disk); it goes back to the group.
    func checkOutputFailure() throws {
        let key = uniqueKey("full")
        try abe(["publish", key, #"{"n":1}"#])
        let failed = try abe(["consume", "--key", key, "--count", "1"], outputPath: "/dev/full", expect: 1)
        XCTAssertTrue(failed.error.contains("cannot write to standard output"), failed.summary)
        // Handed back, it is delivered again at once.
        let again = try abe(["consume", "--key", key, "--count", "1"])
        XCTAssertEqual(try numbers(again), [1])
        XCTAssertEqual(try again.jsonLines().first?["deliveryCount"] as? Int, 2)
    }
}
