import Foundation
import XCTest

/// `abe` against a real file spool in a temporary directory.
final class FileSpoolCLITests: ProviderScenarios {
    override var providerName: String { "file-spool" }

    var spool: String { directory + "/spool" }

    override func setUpWithError() throws {
        try super.setUpWithError()
        environment = ["ABE_SPOOL_DIR": spool]
    }

    func testPublishStatsConsumeRoundTrip() throws { try checkPublishStatsConsumeRoundTrip() }
    func testJSONLinesFromStandardInput() throws { try checkJSONLinesFromStandardInput() }
    func testPrintIDs() throws { try checkPrintIDs() }
    func testDoctor() throws { try checkDoctor() }
    func testDataAndUsageErrors() throws { try checkDataAndUsageErrors() }
    func testOutputFailure() throws { try checkOutputFailure() }

    func testDeadLetters() throws {
        // The spool stores each delivery's deadline, so the first consumer's timeout counts.
        try checkDeadLetters(
            first: ["ABE_SPOOL_VISIBILITY_TIMEOUT": "1ms"],
            second: ["ABE_SPOOL_MAX_DELIVERIES": "1"]
        )
    }

    /// --spool-dir overrides ABE_SPOOL_DIR and, without --backend, QUEUE_BACKEND.
    func testSpoolDirFlagOverridesTheEnvironment() throws {
        let other = directory + "/other"
        let key = uniqueKey("flag")
        try abe(["publish", key, #"{"n":1}"#, "--spool-dir", other], environment: ["QUEUE_BACKEND": "memory"])
        let doctor = try abe(["doctor", "--spool-dir", other])
        XCTAssertTrue(doctor.output.contains("chosen by --spool-dir"), doctor.summary)
        XCTAssertTrue(doctor.output.contains(other), doctor.summary)
        XCTAssertEqual(try stats([key])[key]?["length"] as? Int, 0, "the default spool must not have it")
        let consumed = try abe(["consume", "--key", key, "--count", "1", "--spool-dir", other])
        XCTAssertEqual(try numbers(consumed), [1])
    }

    /// A spool root the provider refuses, or cannot write to, is a configuration error (3) that
    /// says what to fix.
    func testUnusableSpoolDirectory() throws {
        try FileManager.default.createDirectory(atPath: spool, withIntermediateDirectories: false)
        // Writable by others: refused whoever runs the test (root included).
        try FileManager.default.setAttributes([.posixPermissions: 0o777], ofItemAtPath: spool)
        let published = try abe(["publish", uniqueKey("k"), "{}"], expect: 3)
        XCTAssertTrue(published.error.contains("chmod 700"), published.summary)
        XCTAssertLessThanOrEqual(published.error.split(separator: "\n").count, 2, published.summary)
        let doctor = try abe(["doctor"], expect: 3)
        XCTAssertTrue(doctor.output.contains("FAIL"), doctor.summary)
        try abe(["stats"], expect: 3)

        // Not writable by its owner: only a user other than root is stopped by the mode.
        try FileManager.default.setAttributes([.posixPermissions: 0o500], ofItemAtPath: spool)
        if geteuid() != 0 {
            let readOnly = try abe(["publish", uniqueKey("k"), "{}"], expect: 3)
            XCTAssertTrue(readOnly.error.contains("Permission denied"), readOnly.summary)
            try abe(["doctor"], expect: 3)
        }
    }

    /// A root whose parent is missing is not created, by doctor or anyone else: exit 3.
    func testMissingParentDirectory() throws {
        let root = directory + "/missing/spool"
        environment["ABE_SPOOL_DIR"] = root
        let doctor = try abe(["doctor"], expect: 3)
        XCTAssertTrue(doctor.error.contains("does not exist"), doctor.summary)
        try abe(["publish", uniqueKey("k"), "{}"], expect: 3)
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/missing"))

        // A root that is merely missing is reported, and left for the first real use to create.
        environment["ABE_SPOOL_DIR"] = spool
        let fresh = try abe(["doctor"])
        XCTAssertTrue(fresh.output.contains("does not exist yet"), fresh.summary)
        XCTAssertFalse(FileManager.default.fileExists(atPath: spool))
    }
}
