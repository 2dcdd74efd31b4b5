/// The progress bar `abe bench` and `abe demo` redraw in place on a terminal.
enum ProgressBar {
    /// `[########------------]  40%` for `fraction` in 0...1.
    static func bar(_ fraction: Double, width: Int = 24) -> String {
        let clamped = min(1, max(0, fraction.isFinite ? fraction : 0))
        let filled = Int((clamped * Double(width)).rounded(.down))
        let percent = Int((clamped * 100).rounded(.down))
        let label = String(repeating: " ", count: 3 - min(3, String(percent).count)) + "\(percent)%"
        return "[" + String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled) + "] " + label
    }

    /// Replaces the current line of standard error with `text` (no line break): erase the line,
    /// then write, so a shorter text leaves nothing of a longer one behind.
    static func draw(_ text: String) {
        Terminal.writeError("\r\u{1B}[K" + text)
    }

    /// Erases the bar, so that the next line printed starts on a clean line.
    static func clear() {
        Terminal.writeError("\r\u{1B}[K")
    }
}
