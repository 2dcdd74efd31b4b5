import Foundation
import Synchronization
import TestSupport
import XCTest

/// What the multi-process and crash tests share: a fresh spool directory per test, workers
/// started through ``startWorker(_:)`` and killed and reaped in `tearDown` whatever happened,
/// and the parsing of the workers' lines.
class SpoolWorkerTestCase: XCTestCase {
    /// The child process these tests run (Tests/SpoolWorker); `ABE_SPOOL_WORKER` overrides its path.
    static let workerExecutable = "abe-spool-worker"

    private let workers = ChildProcessGroup()
    /// The spool root of this test (not created: the backend and the workers create it, 0700).
    private(set) var spoolDirectory = ""
    private var parentDirectory = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard ChildProcess.executablePath(Self.workerExecutable) != nil else {
            throw ChildProcess.notFound(Self.workerExecutable)
        }
        parentDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-spool-mp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parentDirectory, withIntermediateDirectories: true)
        spoolDirectory = parentDirectory + "/spool"
    }

    override func tearDown() async throws {
        for worker in await workers.terminateAll() {
            XCTFail("could not reap \(worker.summary)")
        }
        try? FileManager.default.removeItem(atPath: parentDirectory)
        try await super.tearDown()
    }

    /// Starts `abe-spool-worker <arguments>`; `tearDown` kills and reaps it if it still runs.
    func startWorker(_ arguments: [String]) throws -> ChildProcess {
        try workers.start(Self.workerExecutable, arguments: arguments)
    }

    /// The directory of `key` under the spool (keys made of `[A-Za-z0-9_-]` keep their name).
    func keyDirectory(_ key: String) -> String {
        spoolDirectory + "/keys/" + key
    }

    /// `got <n> <deliveryCount> <id>` lines as (n, deliveryCount, id).
    static func deliveries(_ lines: [String]) -> [(n: Int, count: Int, id: String)] {
        lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 4, fields[0] == "got", let n = Int(fields[1]), let count = Int(fields[2]) else { return nil }
            return (n, count, String(fields[3]))
        }
    }

    /// The numbers of `acked <n>` lines.
    static func acked(_ lines: [String]) -> [Int] {
        lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, fields[0] == "acked" else { return nil }
            return Int(fields[1])
        }
    }

    /// Lines a worker should never print: `bad …` (a message without an integer `n`).
    static func badLines(_ lines: [String]) -> [String] {
        lines.filter { $0.hasPrefix("bad ") }
    }
}
