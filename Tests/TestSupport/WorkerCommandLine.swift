import AbstractBackend
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The output and argument handling of the worker executables that tests and `Scripts/chaos`
/// drive (`abe-spool-worker`, `abe-consumer-worker`).
///
/// Every line goes out with one `write(2)` straight to its file descriptor, never buffered, so a
/// parent that kills a worker has read every line the worker printed before it died.
public struct WorkerCommandLine: Sendable {
    /// The executable's name, which starts its error lines.
    public let name: String
    /// The usage text appended to argument errors.
    public let usage: String

    /// Creates the command line of the worker `name`.
    public init(name: String, usage: String) {
        self.name = name
        self.usage = usage
    }

    /// Writes `text` and a newline to `descriptor` with as few `write(2)` calls as it takes (one
    /// for a line). Exits with status 3 when the reader is gone.
    public func emit(_ text: String, to descriptor: Int32 = 1) {
        var bytes = Array(text.utf8)
        if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, $0.count - done) }
            if result < 0 {
                if errno == EINTR { continue }
                // The reader is gone (the parent died or closed the pipe): nobody needs us any more.
                _exit(3)
            }
            done += result
        }
    }

    /// Prints `<name>: <message>` on standard error and exits with `code`.
    public func fail(_ message: String, code: Int32) -> Never {
        emit("\(name): \(message)", to: 2)
        exit(code)
    }

    /// Fails with status 2, the message followed by the usage.
    public func badArguments(_ message: String) -> Never {
        fail("\(message); \(usage)", code: 2)
    }

    /// The key `text` names, or a usage error with the error's code and what is wrong.
    public func key(_ text: String) -> MessageQueueKey {
        do {
            return try MessageQueueKey(text)
        } catch {
            badArguments("\(error)")
        }
    }

    /// Splits `arguments` into positionals and `--name value` options, each option at most once and
    /// only those in `allowed`; anything else is a usage error.
    public func parse(_ arguments: ArraySlice<String>, allowed: Set<String>) -> (positionals: [String], options: [String: String]) {
        var positionals: [String] = []
        var options: [String: String] = [:]
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            guard argument.hasPrefix("--") else {
                positionals.append(argument)
                index += 1
                continue
            }
            guard allowed.contains(argument) else { badArguments("unknown option \(argument)") }
            guard index + 1 < arguments.endIndex else { badArguments("\(argument) needs a value") }
            guard options[argument] == nil else { badArguments("\(argument) given twice") }
            options[argument] = arguments[index + 1]
            index += 2
        }
        return (positionals, options)
    }

    /// `text` as an integer of at least `minimum`, or a usage error naming `name`.
    public func integer(_ text: String, _ name: String, minimum: Int) -> Int {
        guard let value = Int(text), value >= minimum else {
            badArguments("\(name) must be an integer ≥ \(minimum), not \(String(reflecting: text))")
        }
        return value
    }

    /// Calls `body` on a thread of its own once standard input reaches its end: the parent's way
    /// of asking for a graceful stop. A plain thread, because the read blocks.
    public func onEndOfInput(_ body: @escaping @Sendable () -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 256)
            while true {
                let result = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress!, $0.count) }
                if result > 0 { continue }
                if result < 0 && errno == EINTR { continue }
                break
            }
            body()
        }
        thread.name = "stdin-watch"
        thread.start()
    }

    /// Exits (status 3) when the parent process goes away, so that a crashed test never leaves
    /// workers behind: a publisher would otherwise only notice when its next line fails to write.
    public func watchParent() {
        let parent = getppid()
        let thread = Thread {
            while getppid() == parent { usleep(100_000) }
            _exit(3)
        }
        thread.name = "parent-watch"
        thread.start()
    }
}
