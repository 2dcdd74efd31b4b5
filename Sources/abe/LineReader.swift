import AbstractBackend

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Standard input as numbered lines, read in chunks on an ``OwnedThread``: a `read` waits for
/// the writer, which may take forever (`tail -f | abe publish …`), and must not hold a thread of
/// Swift's cooperative pool.
struct LineReader {
    /// One line without its line break (`\n` or `\r\n`), numbered from 1.
    struct Line {
        let number: Int
        let bytes: ArraySlice<UInt8>
    }

    private let thread = OwnedThread(name: "abe-stdin")
    private var pending: [UInt8] = []
    private var nextNumber = 1
    private var ended = false

    /// The lines completed by the next chunk of input (at least one line unless the input
    /// ended), or `nil` at the end of the input. A last line without a line break counts.
    mutating func next() async throws(CLIFailure) -> [Line]? {
        while !ended {
            let chunk = await thread.run { Self.readChunk() }
            switch chunk {
            case .failure(let code):
                throw CLIFailure(.failure, "cannot read standard input: \(String(cString: strerror(code)))")
            case .success(let bytes) where bytes.isEmpty:
                ended = true
                thread.stop()
            case .success(let bytes):
                pending += bytes
            }
            let lines = takeLines(includingUnterminated: ended)
            if !lines.isEmpty { return lines }
        }
        return nil
    }

    private mutating func takeLines(includingUnterminated: Bool) -> [Line] {
        var lines: [Line] = []
        var start = 0
        while let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
            lines.append(line(pending[start..<newline]))
            start = newline + 1
        }
        if includingUnterminated && start < pending.count {
            lines.append(line(pending[start...]))
            start = pending.count
        }
        pending.removeFirst(start)
        return lines
    }

    private mutating func line(_ bytes: ArraySlice<UInt8>) -> Line {
        defer { nextNumber += 1 }
        let trimmed = bytes.last == UInt8(ascii: "\r") ? bytes.dropLast() : bytes
        return Line(number: nextNumber, bytes: ArraySlice(Array(trimmed)))
    }

    private enum Chunk: Sendable {
        case success([UInt8])
        case failure(Int32)
    }

    /// One `read(2)` of up to 64 KiB: whatever the writer has written so far.
    private static func readChunk() -> Chunk {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress!, $0.count) }
            if count >= 0 { return .success(Array(buffer[..<count])) }
            if errno != EINTR { return .failure(errno) }
        }
    }
}
