import TestSupport

/// What one publisher was asked to publish, and what it printed.
struct Publication {
    let first: Int
    let count: Int
    let lines: WorkerLines

    /// The numbers it may have stored: everything acknowledged, and the one it was publishing
    /// when it stopped (publishers go one number at a time, in order).
    var attempted: Range<Int> {
        first..<(first + min(count, lines.acked.count + 1))
    }
}

/// The counters of one scenario, as Jepsen's queue checks count them.
struct Counters {
    /// Publishes that returned (`acked`).
    var publishedAcked = 0
    /// Distinct numbers processed.
    var delivered = 0
    /// Acknowledged by a publisher, never processed.
    var lost: Set<Int> = []
    /// Processings beyond the first, summed over all numbers.
    var duplicated = 0
    /// Numbers processed more than once.
    var duplicatedNumbers: Set<Int> = []
    /// Processed numbers no publisher attempted, and payloads no publisher wrote (`bad` lines).
    var unexpected = 0
    var unexpectedDescription = ""

    /// - Parameters:
    ///   - publications: what the publishers attempted and acknowledged.
    ///   - processed: every processing of every consumer, repeats included.
    ///   - bad: `bad` lines of the consumers.
    ///   - documentedSkips: acknowledged numbers a scenario destroys on purpose, whose loss is
    ///     the documented outcome (a record with a flipped byte); neither lost nor unexpected.
    init(publications: [Publication], processed: [Int], bad: [String], documentedSkips: Set<Int> = []) {
        let acked = Set(publications.flatMap(\.lines.acked))
        var attempted = Set<Int>()
        for publication in publications { attempted.formUnion(publication.attempted) }
        var times: [Int: Int] = [:]
        for n in processed { times[n, default: 0] += 1 }
        publishedAcked = acked.count
        delivered = times.count
        lost = acked.subtracting(times.keys).subtracting(documentedSkips)
        duplicatedNumbers = Set(times.filter { $0.value > 1 }.keys)
        duplicated = times.values.reduce(0) { $0 + max(0, $1 - 1) }
        let strangers = Set(times.keys).subtracting(attempted)
        unexpected = strangers.count + bad.count
        if unexpected > 0 {
            unexpectedDescription = "never published: \(describeRanges(strangers)); bad payloads: \(bad.prefix(5))"
        }
    }
}

/// The result of one scenario: its counters, the duplicates it may have, and its own checks.
struct Outcome {
    let name: String
    var counters: Counters?
    /// How many duplicates the faults allow, and why.
    var duplicateAllowance = 0
    var allowanceReason = "no consumer was killed"
    /// Processes (or servers) killed with SIGKILL.
    var kills = 0
    var notes: [String] = []
    var failures: [String] = []
    var seconds = 0.0

    init(_ name: String) {
        self.name = name
    }

    var passed: Bool {
        guard failures.isEmpty else { return false }
        guard let counters else { return true }
        return counters.lost.isEmpty && counters.unexpected == 0 && counters.duplicated <= duplicateAllowance
    }

    /// Adds a failure unless `condition` holds.
    mutating func check(_ condition: Bool, _ failure: @autoclosure () -> String) {
        if !condition { failures.append(failure()) }
    }

    /// The failures the counters imply, spelled out.
    var counterFailures: [String] {
        guard let counters else { return [] }
        var failures: [String] = []
        if !counters.lost.isEmpty { failures.append("lost: \(describeRanges(counters.lost))") }
        if counters.unexpected > 0 { failures.append("unexpected: \(counters.unexpectedDescription)") }
        if counters.duplicated > duplicateAllowance {
            failures.append("\(counters.duplicated) duplicates, more than the \(duplicateAllowance) allowed (\(allowanceReason)): \(describeRanges(counters.duplicatedNumbers))")
        }
        return failures
    }
}
