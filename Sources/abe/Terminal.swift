#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard output and standard error, written with `write(2)` so that it is safe from any task
/// and nothing waits in a buffer: a consumer piped into another program sees each line at once.
enum Terminal {
    /// Whether standard error is a terminal: progress bars are drawn there, plain lines otherwise.
    static let isInteractive = isatty(STDERR_FILENO) == 1
    /// Whether standard output is a terminal: tables are for people, `--json` for programs.
    static let isOutputInteractive = isatty(STDOUT_FILENO) == 1

    static func writeError(_ text: String) {
        write(text, to: STDERR_FILENO)
    }

    /// Writes `text` to standard output. Returns `false` when it could not be written (the
    /// reader went away), so a consumer does not acknowledge a message nobody saw.
    @discardableResult
    static func writeOutput(_ text: String) -> Bool {
        write(text, to: STDOUT_FILENO)
    }

    /// Writes raw bytes to standard output; see ``writeOutput(_:)``.
    @discardableResult
    static func writeOutput(bytes: [UInt8]) -> Bool {
        write(bytes, to: STDOUT_FILENO)
    }

    @discardableResult
    private static func write(_ text: String, to descriptor: Int32) -> Bool {
        write(Array(text.utf8), to: descriptor)
    }

    private static func write(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                #if canImport(Glibc)
                Glibc.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #else
                Darwin.write(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
                #endif
            }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }
}
