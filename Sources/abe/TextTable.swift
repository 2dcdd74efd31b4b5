/// A table of text for people: columns padded with spaces, numbers aligned on the right.
struct TextTable {
    /// The column titles, or `nil` for a table of names and values.
    var header: [String]?
    /// The columns aligned on the right.
    var rightAligned: Set<Int>
    var rows: [[String]] = []

    /// Every line, each ending in a line break; trailing spaces removed.
    var rendered: String {
        let all = (header.map { [$0] } ?? []) + rows
        var widths: [Int] = []
        for row in all {
            for (column, cell) in row.enumerated() {
                if column == widths.count { widths.append(0) }
                widths[column] = max(widths[column], cell.count)
            }
        }
        var text = ""
        for row in all {
            var line = ""
            for (column, cell) in row.enumerated() {
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                if column > 0 { line += "  " }
                line += rightAligned.contains(column) ? padding + cell : cell + padding
            }
            while line.last == " " { line.removeLast() }
            text += line + "\n"
        }
        return text
    }
}
