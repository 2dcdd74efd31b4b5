import Foundation
import TestSupport
import XCTest

/// What the CLI tests share: a fresh working directory per test (removed afterwards), the
/// provider variables of the test, and assertions about runs of `abe`.
class AbeTestCase: XCTestCase {
    /// A directory of this test's own; `abe` runs in it.
    private(set) var directory = ""
    /// The variables every run of this test gets, on top of the runner's environment with its
    /// provider variables removed.
    var environment: [String: String] = [:]
    /// Text that must never appear in anything `abe` prints (a password).
    var secrets: [String] = []

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard AbeProcess.executablePath != nil else {
            throw ChildProcess.notFound("abe")
        }
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        environment = [:]
        secrets = []
    }

    override func tearDownWithError() throws {
        // Modes some tests set would stop the removal.
        _ = try? FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory + "/spool")
        try? FileManager.default.removeItem(atPath: directory)
        try super.tearDownWithError()
    }

    /// A key no other test uses.
    func uniqueKey(_ name: String) -> String {
        "\(name).\(UUID().uuidString.prefix(8))"
    }

    /// Runs `abe <arguments>` and checks that it exited with `status` and printed no secret.
    @discardableResult
    func abe(
        _ arguments: [String],
        input: String = "",
        environment extra: [String: String] = [:],
        outputPath: String? = nil,
        expect status: Int32 = 0,
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> AbeRun {
        let run = try AbeProcess.run(
            arguments, environment: environment.merging(extra) { _, new in new }, input: input,
            outputPath: outputPath, workingDirectory: directory
        )
        XCTAssertEqual(run.status, status, run.summary, file: file, line: line)
        for secret in secrets {
            XCTAssertFalse(run.output.contains(secret), "a secret appeared on standard output: \(run.summary)", file: file, line: line)
            XCTAssertFalse(run.error.contains(secret), "a secret appeared on standard error: \(run.summary)", file: file, line: line)
        }
        // Errors are for people: a line or two, never a stack trace.
        XCTAssertFalse(run.error.contains("Stack dump") || run.error.contains("Fatal error"), run.summary, file: file, line: line)
        return run
    }

    /// `abe stats --json` for `keys`, as (key → statistics).
    func stats(_ keys: [String], file: StaticString = #filePath, line: UInt = #line) throws -> [String: [String: Any]] {
        let run = try abe(["stats", "--json"] + keys.flatMap { ["--key", $0] }, file: file, line: line)
        let document = try XCTUnwrap(try run.json(file: file, line: line) as? [String: Any], file: file, line: line)
        let entries = try XCTUnwrap(document["keys"] as? [[String: Any]], run.summary, file: file, line: line)
        var result: [String: [String: Any]] = [:]
        for entry in entries {
            result[try XCTUnwrap(entry["key"] as? String, file: file, line: line)] = entry
        }
        return result
    }

    /// The statistics of `group` in a key's statistics from ``stats(_:file:line:)``.
    func group(_ name: String, in key: [String: Any]?, file: StaticString = #filePath, line: UInt = #line) throws -> [String: Any] {
        let groups = try XCTUnwrap(key?["groups"] as? [[String: Any]], "no groups in \(String(describing: key))", file: file, line: line)
        return try XCTUnwrap(groups.first { $0["group"] as? String == name }, "no group \(name) in \(groups)", file: file, line: line)
    }

    /// The `n` member of each consumed message's payload.
    func numbers(_ run: AbeRun, file: StaticString = #filePath, line: UInt = #line) throws -> [Int] {
        try run.jsonLines(file: file, line: line).map { message in
            let payload = try XCTUnwrap(message["payload"] as? [String: Any], "\(message)", file: file, line: line)
            return try XCTUnwrap(payload["n"] as? Int, "\(message)", file: file, line: line)
        }
    }
}
