import Foundation
import TestSupport
import XCTest

/// How one run of the built `abe` ended: its exit status and everything it wrote.
struct AbeRun {
    let arguments: [String]
    let status: Int32
    let output: String
    let error: String

    /// The lines of standard output.
    var lines: [String] { output.split(separator: "\n", omittingEmptySubsequences: true).map(String.init) }

    /// Standard output parsed as one JSON value, for `stats --json`.
    func json(file: StaticString = #filePath, line: UInt = #line) throws -> Any {
        do {
            return try JSONSerialization.jsonObject(with: Data(output.utf8))
        } catch {
            XCTFail("abe \(arguments.joined(separator: " ")) printed no JSON: \(output) / \(self.error)", file: file, line: line)
            throw error
        }
    }

    /// Each line of standard output parsed as a JSON object, for `consume`.
    func jsonLines(file: StaticString = #filePath, line: UInt = #line) throws -> [[String: Any]] {
        try lines.map { text in
            guard let object = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else {
                XCTFail("not a JSON object: \(text)", file: file, line: line)
                return [:]
            }
            return object
        }
    }

    /// A one-line summary for failure messages.
    var summary: String {
        "abe \(arguments.joined(separator: " ")) exited \(status); stdout: \(output.debugDescription); stderr: \(error.debugDescription)"
    }
}

/// Runs the `abe` executable the package builds, as a child process with a controlled
/// environment, like a user in a shell would.
enum AbeProcess {
    /// `abe` next to the test bundle, in the build products directory (`.build/debug`, or
    /// whatever `--scratch-path` chose). `ABE` overrides it.
    static let executablePath = ChildProcess.executablePath("abe")

    /// The variables that choose or configure a provider: removed from the test runner's
    /// environment, so that only what a test sets reaches `abe`.
    static func isProviderVariable(_ name: String) -> Bool {
        name == "QUEUE_BACKEND" || name.hasPrefix("REDIS_") || name.hasPrefix("ABE_")
    }

    /// How long a run may take before it counts as hung: a safety net, not a measurement.
    static let hangLimit: TimeInterval = 120

    /// Runs `abe <arguments>` with `environment` added to the runner's (provider variables
    /// removed), `input` on standard input and `outputPath` (default: a capture) as standard output.
    static func run(
        _ arguments: [String],
        environment: [String: String],
        input: String = "",
        outputPath: String? = nil,
        workingDirectory: String
    ) throws -> AbeRun {
        guard let executable = executablePath else {
            throw ChildProcess.notFound("abe")
        }
        let files = FileManager.default
        let scratch = workingDirectory + "/.abe-run-\(UUID().uuidString)"
        try files.createDirectory(atPath: scratch, withIntermediateDirectories: true)
        defer { try? files.removeItem(atPath: scratch) }
        let inputPath = scratch + "/stdin", capturePath = scratch + "/stdout", errorPath = scratch + "/stderr"
        for (path, contents) in [(inputPath, Data(input.utf8)), (capturePath, Data()), (errorPath, Data())] {
            guard files.createFile(atPath: path, contents: contents) else {
                throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
            }
        }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: workingDirectory)
        process.environment = ProcessInfo.processInfo.environment.filter { !isProviderVariable($0.key) }
            .merging(environment) { _, new in new }
        let stdin = try FileHandle(forReadingFrom: URL(fileURLWithPath: inputPath))
        let stdout = try FileHandle(forWritingTo: URL(fileURLWithPath: outputPath ?? capturePath))
        let stderr = try FileHandle(forWritingTo: URL(fileURLWithPath: errorPath))
        defer {
            try? stdin.close()
            try? stdout.close()
            try? stderr.close()
        }
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        let deadline = Date().addingTimeInterval(hangLimit)
        while process.isRunning && Date() < deadline {
            usleep(10_000)
        }
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
            XCTFail("abe \(arguments.joined(separator: " ")) did not finish within \(Int(hangLimit)) s; terminated")
        }
        return AbeRun(
            arguments: arguments,
            status: process.terminationStatus,
            output: (try? String(contentsOfFile: capturePath, encoding: .utf8)) ?? "",
            error: (try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? ""
        )
    }
}
