/// Checks shared by keys and group names: a byte-length range and no control characters.
enum NameValidation {
    /// Returns a description of the first broken rule, or `nil` when `name` is valid.
    static func problem(in name: String, maxBytes: Int) -> String? {
        let byteCount = name.utf8.count
        if byteCount == 0 { return "it is empty; use 1 to \(maxBytes) UTF-8 bytes" }
        if byteCount > maxBytes { return "it is \(byteCount) UTF-8 bytes long; the limit is \(maxBytes)" }
        var offset = 0
        for scalar in name.unicodeScalars {
            if scalar.properties.generalCategory == .control {
                let hex = String(scalar.value, radix: 16, uppercase: true)
                let padded = String(repeating: "0", count: max(0, 4 - hex.count)) + hex
                return "it contains the control character U+\(padded) at character \(offset); control characters (including NUL, tab and newline) are not allowed"
            }
            offset += 1
        }
        return nil
    }

    /// A quoted, shortened rendering of a rejected name that is safe to print.
    static func quoted(_ name: String) -> String {
        var escaped = ""
        for scalar in name.unicodeScalars.prefix(64) {
            escaped += scalar.properties.generalCategory == .control
                ? scalar.escaped(asASCII: true) : String(scalar)
        }
        return "\"" + escaped + (name.unicodeScalars.count > 64 ? "…" : "") + "\""
    }
}
