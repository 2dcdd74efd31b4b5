import Foundation
import TestSupport

/// How hard the harness pushes: the short form (`Scripts/chaos`, run by `Scripts/test`) or the
/// long one (`Scripts/chaos --long`).
struct Plan {
    let long: Bool
    /// Where scenarios put spools and servers; `Scripts/chaos` removes it.
    let workDirectory: String
    /// Where the Redis restart scenario keeps its AOF: tmpfs when `Scripts/chaos` found one.
    let memoryDirectory: String

    var consumerKills: Int { long ? 120 : 30 }
    var redisRestarts: Int { long ? 10 : 4 }
    var vanishingRestarts: Int { long ? 3 : 1 }
    var writerKills: Int { long ? 60 : 20 }

    /// Visibility timeout of the fault scenarios: short, so that the deliveries of a killed
    /// consumer come back soon; far above the handlers' time, so that nothing else times out.
    static let visibilityTimeout = Duration.seconds(2)
    static let visibilityVariable = "2s"
    /// Fault scenarios must not dead-letter: a message fetched by consumer after consumer that is
    /// killed before handling it is still owed to the group, however often that happens.
    static let unlimitedDeliveries = "1000000"

    func path(_ name: String) -> String { workDirectory + "/" + name }

    /// The variables of a Redis consumer or publisher on `server`.
    static func redisEnvironment(_ server: RedisServer, unlimitedDeliveries: Bool = true) -> [String: String] {
        var environment = [
            "QUEUE_BACKEND": "redis", "REDIS_URL": server.url,
            "ABE_REDIS_VISIBILITY_TIMEOUT": visibilityVariable, "ABE_REDIS_BLOCK_TIME": "200ms",
        ]
        if unlimitedDeliveries { environment["ABE_REDIS_MAX_DELIVERIES"] = Self.unlimitedDeliveries }
        return environment
    }
}

/// Prints `line` to standard output at once (one write), so that a log of the run shows each
/// scenario as it ends; `print` buffers when the output is a file.
func report(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

/// Runs one scenario with a fleet of its own, kills and reaps whatever it leaves running, keeps
/// the output of its processes in `logDirectory`, and prints its details as soon as it ends.
func runScenario(_ name: String, logDirectory: String, _ body: (Fleet, inout Outcome) async throws -> Void) async -> Outcome {
    report("== \(name)")
    let fleet = Fleet()
    var outcome = Outcome(name)
    let started = ContinuousClock.now
    do {
        try await body(fleet, &outcome)
    } catch {
        outcome.failures.append("harness: \(error)")
    }
    do {
        try await fleet.shutdown(logDirectory: logDirectory)
    } catch {
        outcome.failures.append("harness: cannot keep the logs: \(error)")
    }
    let elapsed = ContinuousClock.now - started
    outcome.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    if let counters = outcome.counters, counters.duplicated > 0 {
        outcome.notes.append("processed more than once: \(describeRanges(counters.duplicatedNumbers))")
    }
    for note in outcome.notes { report("   \(note)") }
    // Failures quote workers' output, which can be long; all of it is in the logs.
    for failure in outcome.failures + outcome.counterFailures { report("   FAILED: \(failure.prefix(600))") }
    report("   \(outcome.passed ? "passed" : "FAILED") in \(String(format: "%.1f", outcome.seconds)) s")
    return outcome
}

/// Every number `workers` processed, repeats included.
func processed(by workers: [ChildProcess]) -> [Int] {
    workers.flatMap { WorkerLines($0.lines).processed }
}

/// Waits until `workers()` (the list may grow) processed every number in `needed`, polling, or
/// `timeout` passes. Returns whether they did.
func waitUntilProcessed(_ needed: Set<Int>, by workers: () -> [ChildProcess], timeout: Duration) async -> Bool {
    await eventually(within: timeout) { needed.isSubset(of: processed(by: workers())) }
}

/// Polls `condition` until it holds or `timeout` passes. Returns whether it held.
func eventually(within timeout: Duration, _ condition: () -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + timeout
    while true {
        if condition() { return true }
        if ContinuousClock.now >= deadline { return false }
        try? await Task.sleep(for: .milliseconds(200))
    }
}

/// Waits for a publisher to finish and records a failure unless it exited with 0.
func finish(_ publisher: Publisher, within timeout: Duration, _ outcome: inout Outcome) async -> Publication {
    let end = await publisher.process.waitForExit(timeout: timeout)
    outcome.check(end == .exited(0), "a publisher did not finish: \(publisher.process.summary)")
    return publisher.publication
}

/// The lines of a worker's log (swift-log's `StreamLogHandler` on standard error:
/// `<time> <level> <label>: …`) at `level` that contain every one of `words`.
func logLines(_ text: String, level: String, containing words: String...) -> [Substring] {
    text.split(separator: "\n").filter { line in
        let fields = line.split(separator: " ", maxSplits: 2)
        return fields.count == 3 && fields[1] == level && words.allSatisfy { line.contains($0) }
    }
}
