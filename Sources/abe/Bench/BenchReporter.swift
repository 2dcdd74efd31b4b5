import Synchronization

/// Shows how far `abe bench` is: on a terminal a bar on standard error, redrawn in place with the
/// running scenario and its time; otherwise one plain line per scenario as it starts. At the end
/// it prints a summary table on standard error. The JSON lines on standard output are unchanged.
final class BenchReporter: Sendable {
    private struct State {
        var done = 0
        var current = "preparing"
        var started = ContinuousClock.now
        var results: [BenchResult] = []
        var finished = false
    }

    private let total: Int
    private let state = Mutex(State())
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    /// Held while the bar is drawn or erased around a result line, so the two never interleave.
    private let drawing = Mutex(())

    /// A reporter for a run that prints `total` result lines.
    init(total: Int) {
        self.total = total
        guard Terminal.isInteractive else { return }
        // The elapsed time of a long scenario keeps moving; four redraws a second cost nothing
        // measurable next to the scenarios themselves.
        ticker.withLock {
            $0 = Task { [self] in
                while (try? await Task.sleep(for: .milliseconds(250))) != nil {
                    redraw()
                }
            }
        }
    }

    /// Shows `label` as the work in progress without counting it as a line (a warm-up round).
    func begin(_ label: String) {
        show(label, numbered: false)
    }

    /// Runs one scenario shown as `label` and prints its JSON line.
    func line(_ label: String, _ body: () async throws -> BenchResult) async throws {
        show(label, numbered: true)
        let result = try await body()
        drawing.withLock { _ in
            if Terminal.isInteractive { ProgressBar.clear() }
            print(result.jsonLine)
        }
        state.withLock { state in
            state.done += 1
            state.results.append(result)
        }
        if Terminal.isInteractive { redraw() }
    }

    /// Stops the bar and prints the summary table of every line so far.
    func finish() {
        ticker.withLock { $0?.cancel() }
        let results = drawing.withLock { _ in
            if Terminal.isInteractive { ProgressBar.clear() }
            return state.withLock { state in
                state.finished = true
                return state.results
            }
        }
        guard !results.isEmpty else { return }
        var table = TextTable(
            header: ["BACKEND", "SCENARIO", "OPTIONS", "MESSAGES", "SECONDS", "MSGS/S", "P50 µs", "P99 µs", "CPU µs/MSG", "SERVER µs/MSG"],
            rightAligned: [3, 4, 5, 6, 7, 8, 9]
        )
        for result in results {
            let options = result.extra.map { "\($0.0)=\($0.1.replacingQuotes)" }.joined(separator: " ")
            table.rows.append([
                result.backend, result.scenario, options, "\(result.messages)",
                "\((result.seconds * 1000).rounded() / 1000)",
                result.reportsThroughput ? "\(Int(result.messagesPerSecond.rounded()))" : "-",
                result.latency.map { "\(($0.p50Microseconds * 10).rounded() / 10)" } ?? "-",
                result.latency.map { "\(($0.p99Microseconds * 10).rounded() / 10)" } ?? "-",
                result.microsecondsPerMessage(result.cpuSeconds).map { result.format($0, digits: 2) } ?? "-",
                result.microsecondsPerMessage(result.serverCPUSeconds).map { result.format($0, digits: 2) } ?? "-",
            ])
        }
        Terminal.writeError("\n" + table.rendered)
    }

    private func show(_ label: String, numbered: Bool) {
        let done = state.withLock { state in
            state.current = label
            state.started = .now
            return state.done
        }
        if Terminal.isInteractive {
            redraw()
        } else {
            Terminal.writeError("bench: " + (numbered ? "[\(done + 1)/\(total)] " : "") + label + "\n")
        }
    }

    private func redraw() {
        // Under the drawing lock, so a redraw never lands after `finish()` erased the bar.
        drawing.withLock { _ in
            let (done, current, started, finished) = state.withLock { ($0.done, $0.current, $0.started, $0.finished) }
            guard !finished else { return }
            let fraction = total == 0 ? 1 : Double(done) / Double(total)
            let elapsed = ((ContinuousClock.now - started).seconds * 10).rounded() / 10
            ProgressBar.draw("\(ProgressBar.bar(fraction)) \(done)/\(total)  \(current)  \(elapsed)s")
        }
    }
}

extension String {
    /// The text of a JSON string value without its quotes, for the summary table.
    fileprivate var replacingQuotes: String { filter { $0 != "\"" } }
}
