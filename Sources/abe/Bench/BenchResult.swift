/// One line of `abe bench` output.
struct BenchResult {
    var backend: String
    var scenario: String
    var messages: Int
    var payloadBytes: Int
    var seconds: Double
    var latency: LatencySummary?
    var extra: [(String, String)] = []
    /// Whether `msgs_per_sec` means anything: `false` for lines that time one event rather than
    /// a stream of messages (the file spool's `recovery`), which print it as `null`.
    var reportsThroughput = true
    /// The CPU time this process used over `seconds`, when measured.
    var cpuSeconds: Double?
    /// The CPU time the server used over `seconds` (Redis lines), when measured.
    var serverCPUSeconds: Double?

    var messagesPerSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }

    /// A line whose seconds and CPU times come from `timing`.
    init(
        backend: String, scenario: String, messages: Int, payloadBytes: Int, timing: BenchTiming,
        latency: LatencySummary?, extra: [(String, String)] = []
    ) {
        self.init(backend: backend, scenario: scenario, messages: messages, payloadBytes: payloadBytes, seconds: timing.seconds, latency: latency, extra: extra)
        cpuSeconds = timing.cpuSeconds
        serverCPUSeconds = timing.serverCPUSeconds
    }

    init(
        backend: String, scenario: String, messages: Int, payloadBytes: Int, seconds: Double,
        latency: LatencySummary?, extra: [(String, String)] = [], reportsThroughput: Bool = true
    ) {
        self.backend = backend
        self.scenario = scenario
        self.messages = messages
        self.payloadBytes = payloadBytes
        self.seconds = seconds
        self.latency = latency
        self.extra = extra
        self.reportsThroughput = reportsThroughput
    }

    /// Microseconds of `cpu` per message, or `nil` when not measured or not a stream of messages.
    func microsecondsPerMessage(_ cpu: Double?) -> Double? {
        guard let cpu, reportsThroughput, messages > 0 else { return nil }
        return cpu / Double(messages) * 1_000_000
    }

    /// The result as one JSON object, fields in a fixed order.
    var jsonLine: String {
        var fields: [(String, String)] = [
            ("backend", quoted(backend)),
            ("scenario", quoted(scenario)),
        ]
        fields += extra
        fields += [
            ("messages", "\(messages)"),
            ("payload_bytes", "\(payloadBytes)"),
            ("seconds", format(seconds, digits: 4)),
            ("msgs_per_sec", reportsThroughput ? "\(Int(messagesPerSecond.rounded()))" : "null"),
            ("p50_us", latency.map { format($0.p50Microseconds, digits: 1) } ?? "null"),
            ("p99_us", latency.map { format($0.p99Microseconds, digits: 1) } ?? "null"),
            ("cpu_us_per_msg", microsecondsPerMessage(cpuSeconds).map { format($0, digits: 2) } ?? "null"),
            ("server_cpu_us_per_msg", microsecondsPerMessage(serverCPUSeconds).map { format($0, digits: 2) } ?? "null"),
        ]
        return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
    }

    private func quoted(_ text: String) -> String { "\"\(text)\"" }

    func format(_ value: Double, digits: Int) -> String {
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let rounded = (value * scale).rounded() / scale
        return "\(rounded)"
    }
}

/// Percentiles of publish→ack (or per-call) latencies.
struct LatencySummary {
    let p50Microseconds: Double
    let p99Microseconds: Double

    /// Sorts `nanoseconds` in place and reads the percentiles.
    init?(nanoseconds: inout [Int64]) {
        guard !nanoseconds.isEmpty else { return nil }
        nanoseconds.sort()
        func percentile(_ fraction: Double) -> Double {
            let index = min(nanoseconds.count - 1, Int(Double(nanoseconds.count) * fraction))
            return Double(nanoseconds[index]) / 1000
        }
        p50Microseconds = percentile(0.50)
        p99Microseconds = percentile(0.99)
    }
}
