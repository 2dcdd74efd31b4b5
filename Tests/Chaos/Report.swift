import Foundation

/// The summary table of `abe-chaos`.
enum Report {
    static let headers = ["scenario", "published-acked", "delivered", "lost", "duplicated", "allowed", "unexpected", "kills", "seconds", "result"]

    static func table(_ outcomes: [Outcome]) -> String {
        let rows = outcomes.map { outcome -> [String] in
            let counters = outcome.counters
            return [
                outcome.name,
                counters.map { "\($0.publishedAcked)" } ?? "-",
                counters.map { "\($0.delivered)" } ?? "-",
                counters.map { "\($0.lost.count)" } ?? "-",
                counters.map { "\($0.duplicated)" } ?? "-",
                counters == nil ? "-" : "\(outcome.duplicateAllowance)",
                counters.map { "\($0.unexpected)" } ?? "-",
                "\(outcome.kills)",
                String(format: "%.1f", outcome.seconds),
                outcome.passed ? "pass" : "FAIL",
            ]
        }
        let widths = headers.indices.map { column in ([headers] + rows).map { $0[column].count }.max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  ")
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(headers), rule] + rows.map(line)).joined(separator: "\n")
    }
}
