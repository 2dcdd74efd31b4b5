/// What the helper workers (`abe-consumer-worker`, `abe-spool-worker`) printed, parsed from
/// their standard output lines:
///
/// - `acked <n>`: a publish of `{"n": n}` returned;
/// - `retry <n>`: a publish of `n` failed with a provider outage and is tried again;
/// - `start <n> <deliveryCount>` / `handled <n>`: a consumer's handler began / returned;
/// - `got <n> <deliveryCount> <id>`: a spool worker consumed `n` (and acknowledges it next);
/// - `bad …`: a message whose payload no publisher of these workers wrote.
public struct WorkerLines: Sendable {
    public private(set) var acked: [Int] = []
    public private(set) var retries: [Int] = []
    public private(set) var starts: [(n: Int, deliveryCount: Int)] = []
    public private(set) var handled: [Int] = []
    public private(set) var got: [(n: Int, deliveryCount: Int, id: String)] = []
    public private(set) var bad: [String] = []

    public init(_ lines: [String]) {
        for line in lines {
            let fields = line.split(separator: " ")
            guard let verb = fields.first else { continue }
            let n = fields.count > 1 ? Int(fields[1]) : nil
            switch (verb, fields.count, n) {
            case ("acked", 2, let n?): acked.append(n)
            case ("retry", 2, let n?): retries.append(n)
            case ("handled", 2, let n?): handled.append(n)
            case ("start", 3, let n?):
                if let count = Int(fields[2]) { starts.append((n, count)) }
            case ("got", 4, let n?):
                if let count = Int(fields[2]) { got.append((n, count, String(fields[3]))) }
            case ("bad", _, _): bad.append(line)
            default: break
            }
        }
    }

    /// What a consumer processed: `handled` for `abe-consumer-worker`, `got` for `abe-spool-worker`.
    public var processed: [Int] { handled + got.map(\.n) }

    /// The numbers whose handler started (`start` lines).
    public var started: Set<Int> { Set(starts.map(\.n)) }

    /// Started, and not finished (`handled`) when the output ended.
    public var running: Set<Int> { started.subtracting(handled) }
}

/// `numbers` as a short text of ranges, for reports: `3-7, 12, 40-41 (8 in all)`, at most
/// `limit` ranges.
public func describeRanges(_ numbers: some Sequence<Int>, limit: Int = 30) -> String {
    let sorted = Array(Set(numbers)).sorted()
    guard !sorted.isEmpty else { return "none" }
    var parts: [String] = []
    var index = 0
    while index < sorted.count, parts.count < limit {
        var end = index
        while end + 1 < sorted.count, sorted[end + 1] == sorted[end] + 1 { end += 1 }
        parts.append(end == index ? "\(sorted[index])" : "\(sorted[index])-\(sorted[end])")
        index = end + 1
    }
    return parts.joined(separator: ", ") + (index < sorted.count ? ", …" : "") + " (\(sorted.count) in all)"
}
