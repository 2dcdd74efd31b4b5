import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One `abe-spool-worker` child process (Tests/SpoolWorker) that a test owns: spawned with
/// `posix_spawn`, its standard output collected line by line, its standard input held open until
/// ``closeInput()`` (which asks a `consume` worker to stop), killed at will, and always reaped.
///
/// Each worker has three threads of its own: two read its output and error pipes to the end, one
/// waits for it to exit (`waitpid`), so the child is reaped as soon as it dies and never becomes a
/// zombie. ``terminate()`` (and `deinit`, as a last resort) kills and reaps a worker still running.
///
/// The worker writes each line with one `write(2)` and never buffers, so after a `SIGKILL` the
/// lines read here are exactly the lines it printed.
final class SpoolWorkerProcess: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    private struct State {
        var lines: [String] = []
        var partialLine: [UInt8] = []
        var errorText: [UInt8] = []
        var outputClosed = false
        var errorClosed = false
        /// The raw `waitpid` status once the child exited.
        var status: Int32?
        var inputDescriptor: Int32 = -1
    }

    /// The state the worker's threads share with the test; a class, so the threads can hold it.
    private final class Shared: Sendable {
        let mutex = Mutex(State())

        func withLock<Result>(_ body: (inout State) -> Result) -> Result {
            mutex.withLock { body(&$0) }
        }
    }

    let pid: pid_t
    let arguments: [String]
    private let state = Shared()

    /// The path of `abe-spool-worker` next to the test bundle, in the build products directory
    /// (`.build/debug`, or whatever `--scratch-path` chose). `ABE_SPOOL_WORKER` overrides it.
    static let executablePath: String? = {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment["ABE_SPOOL_WORKER"], fileManager.isExecutableFile(atPath: path) {
            return path
        }
        var starts: [URL] = [Bundle.main.bundleURL]
        if let first = CommandLine.arguments.first {
            starts.append(URL(fileURLWithPath: first).resolvingSymlinksInPath().deletingLastPathComponent())
        }
        starts += Bundle.allBundles.map(\.bundleURL).filter { $0.pathExtension == "xctest" }
        for start in starts {
            var directory = start.standardizedFileURL
            // From the products directory itself, or from inside an .xctest bundle (macOS).
            for _ in 0..<4 {
                let candidate = directory.appendingPathComponent("abe-spool-worker").path
                if fileManager.isExecutableFile(atPath: candidate) { return candidate }
                directory.deleteLastPathComponent()
            }
        }
        return nil
    }()

    /// Starts `abe-spool-worker <arguments>`.
    init(_ arguments: [String]) throws {
        guard let path = Self.executablePath else {
            throw Failure(description: "abe-spool-worker was not found next to the test bundle (\(Bundle.main.bundleURL.path)); build it with `swift build --build-tests` or set ABE_SPOOL_WORKER")
        }
        self.arguments = arguments
        let input = try Self.makePipe()
        let output = try Self.makePipe()
        let errors = try Self.makePipe()

        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        let environment = _NSGetEnviron().pointee
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        let environment = environ
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies; the originals (close-on-exec) vanish at exec.
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        // A clean signal state: nothing blocked, SIGPIPE at its default whatever the test runner set.
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGPIPE)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var pid = pid_t()
        let result = argv.withUnsafeBufferPointer { argvBuffer in
            posix_spawn(&pid, path, &actions, &attributes, argvBuffer.baseAddress!, environment)
        }
        // The child's ends belong to the child now.
        close(input.read)
        close(output.write)
        close(errors.write)
        guard result == 0 else {
            close(input.write)
            close(output.read)
            close(errors.read)
            throw Failure(description: "cannot start \(path): \(String(cString: strerror(result)))")
        }
        self.pid = pid
        state.withLock { $0.inputDescriptor = input.write }
        startThreads(output: output.read, errors: errors.read)
    }

    deinit {
        // Last resort for a test that forgot terminate(): never leave a child running.
        if state.withLock({ $0.status == nil }) {
            _ = sendSignal(pid, SIGKILL)
            let deadline = ContinuousClock.now + .seconds(5)
            while state.withLock({ $0.status == nil }), ContinuousClock.now < deadline { usleep(1_000) }
        }
        closeInput()
    }

    private static func makePipe() throws -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [0, 0]
        guard pipe(&descriptors) == 0 else {
            throw Failure(description: "pipe failed: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec (pipe2 is not visible from Swift): only the child we spawn gets a copy,
        // through dup2, so a pipe reaches its end of file when its own child exits.
        for descriptor in descriptors {
            _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        }
        return (descriptors[0], descriptors[1])
    }

    private func startThreads(output: Int32, errors: Int32) {
        let pid = self.pid
        let state = self.state
        let outputReader = Thread {
            Self.readAll(output) { bytes in
                state.withLock { state in
                    for byte in bytes {
                        if byte == UInt8(ascii: "\n") {
                            state.lines.append(String(decoding: state.partialLine, as: UTF8.self))
                            state.partialLine.removeAll(keepingCapacity: true)
                        } else {
                            state.partialLine.append(byte)
                        }
                    }
                }
            }
            state.withLock { $0.outputClosed = true }
        }
        outputReader.name = "worker-\(pid)-stdout"
        outputReader.start()
        let errorReader = Thread {
            Self.readAll(errors) { bytes in state.withLock { $0.errorText += bytes } }
            state.withLock { $0.errorClosed = true }
        }
        errorReader.name = "worker-\(pid)-stderr"
        errorReader.start()
        let reaper = Thread {
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 {
                if errno != EINTR {
                    status = -1
                    break
                }
            }
            state.withLock { $0.status = status }
        }
        reaper.name = "worker-\(pid)-wait"
        reaper.start()
    }

    private static func readAll(_ descriptor: Int32, _ deliver: ([UInt8]) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress!, $0.count) }
            if count > 0 {
                deliver(Array(buffer[0..<count]))
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                break
            }
        }
        close(descriptor)
    }

    // MARK: Observing

    /// Every complete line the worker printed so far.
    var lines: [String] { state.withLock { $0.lines } }

    /// What the worker wrote to standard error so far.
    var errorText: String { state.withLock { String(decoding: $0.errorText, as: UTF8.self) } }

    /// Whether the worker has exited (and was reaped).
    var hasExited: Bool { state.withLock { $0.status != nil } }

    /// How the worker ended: `exited(code)` or `signalled(number)`; `nil` while it runs.
    var termination: Termination? {
        guard let status = state.withLock({ $0.status }) else { return nil }
        if status == -1 { return .unknown }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signalled(status & 0x7f)
    }

    enum Termination: Equatable, CustomStringConvertible {
        case exited(Int32)
        case signalled(Int32)
        case unknown

        var description: String {
            switch self {
            case .exited(let code): return "exited with \(code)"
            case .signalled(let signal): return "killed by signal \(signal)"
            case .unknown: return "ended (status unknown)"
            }
        }
    }

    /// A one-line summary for failure messages.
    var summary: String {
        let lines = self.lines
        let tail = lines.suffix(3).joined(separator: " | ")
        return "worker \(pid) [\(arguments.joined(separator: " "))]: \(termination.map(\.description) ?? "running"), "
            + "\(lines.count) lines (last: \(tail)); stderr: \(errorText.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// Waits until `condition` holds for the lines printed so far, or `timeout` passes, or the
    /// worker has exited and printed everything without satisfying it. Returns whether it holds.
    @discardableResult
    func waitUntil(timeout: Duration, _ condition: ([String]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (lines, finished) = state.withLock { ($0.lines, $0.outputClosed && $0.status != nil) }
            if condition(lines) { return true }
            if finished || ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Waits (bounded) for the worker's `ready` line: the spool is open.
    func waitUntilReady(timeout: Duration = .seconds(20)) async throws {
        guard await waitUntil(timeout: timeout, { $0.contains("ready") }) else {
            throw Failure(description: "no \"ready\" within \(timeout): \(summary)")
        }
    }

    // MARK: Controlling

    /// Closes the worker's standard input: a `consume` worker stops, closes its backend and exits.
    func closeInput() {
        let descriptor = state.withLock { state -> Int32 in
            defer { state.inputDescriptor = -1 }
            return state.inputDescriptor
        }
        if descriptor >= 0 { close(descriptor) }
    }

    /// Sends `signal` to the worker unless it has already been reaped (its pid may be reused).
    func kill(_ signal: Int32 = SIGKILL) {
        state.withLock { state in
            if state.status == nil { _ = sendSignal(pid, signal) }
        }
    }

    /// Waits until the worker has exited and its output is read to the end. Returns how it
    /// ended, or `nil` when it is still running after `timeout`.
    @discardableResult
    func waitForExit(timeout: Duration = .seconds(20)) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.status != nil && $0.outputClosed && $0.errorClosed }) { return termination }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Kills the worker unless it has exited, and waits for it to be reaped (bounded).
    func terminate() async {
        closeInput()
        kill(SIGKILL)
        await waitForExit(timeout: .seconds(10))
    }

    /// Asks a `consume` worker to stop by closing its standard input; kills it when it has not
    /// exited within `timeout`. Returns how it ended.
    @discardableResult
    func stop(timeout: Duration = .seconds(10)) async -> Termination? {
        closeInput()
        if let termination = await waitForExit(timeout: timeout) { return termination }
        await terminate()
        return termination
    }
}

/// `kill(2)`, under a name that the worker's own `kill(_:)` does not shadow.
private func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
    kill(pid, signal)
}

/// What the multi-process and crash tests share: a fresh spool directory per test, workers
/// started through ``startWorker(_:)`` and killed and reaped in `tearDown` whatever happened,
/// and the parsing of the workers' lines.
class SpoolWorkerTestCase: XCTestCase {
    private final class Workers: Sendable {
        let list = Mutex<[SpoolWorkerProcess]>([])
    }

    private let workers = Workers()
    /// The spool root of this test (not created: the backend and the workers create it, 0700).
    private(set) var spoolDirectory = ""
    private var parentDirectory = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard SpoolWorkerProcess.executablePath != nil else {
            throw SpoolWorkerProcess.Failure(description: "abe-spool-worker was not found next to the test bundle (\(Bundle.main.bundleURL.path)); build it with `swift build --build-tests` or set ABE_SPOOL_WORKER")
        }
        parentDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("abe-spool-mp-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parentDirectory, withIntermediateDirectories: true)
        spoolDirectory = parentDirectory + "/spool"
    }

    override func tearDown() async throws {
        let all = workers.list.withLock { list -> [SpoolWorkerProcess] in
            defer { list.removeAll() }
            return list
        }
        for worker in all { await worker.terminate() }
        for worker in all where !worker.hasExited {
            XCTFail("could not reap \(worker.summary)")
        }
        try? FileManager.default.removeItem(atPath: parentDirectory)
        try await super.tearDown()
    }

    /// Starts `abe-spool-worker <arguments>`; `tearDown` kills and reaps it if it still runs.
    func startWorker(_ arguments: [String]) throws -> SpoolWorkerProcess {
        let worker = try SpoolWorkerProcess(arguments)
        workers.list.withLock { $0.append(worker) }
        return worker
    }

    /// The directory of `key` under the spool (keys made of `[A-Za-z0-9_-]` keep their name).
    func keyDirectory(_ key: String) -> String {
        spoolDirectory + "/keys/" + key
    }

    /// `got <n> <deliveryCount> <id>` lines as (n, deliveryCount, id).
    static func deliveries(_ lines: [String]) -> [(n: Int, count: Int, id: String)] {
        lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 4, fields[0] == "got", let n = Int(fields[1]), let count = Int(fields[2]) else { return nil }
            return (n, count, String(fields[3]))
        }
    }

    /// The numbers of `acked <n>` lines.
    static func acked(_ lines: [String]) -> [Int] {
        lines.compactMap { line in
            let fields = line.split(separator: " ")
            guard fields.count == 2, fields[0] == "acked" else { return nil }
            return Int(fields[1])
        }
    }

    /// Lines a worker should never print: `bad …` (a message without an integer `n`).
    static func badLines(_ lines: [String]) -> [String] {
        lines.filter { $0.hasPrefix("bad ") }
    }

    /// `numbers` as a short text of ranges, for failure messages: `3-7, 12, 40-41`.
    static func describe(_ numbers: some Sequence<Int>, limit: Int = 30) -> String {
        let sorted = Array(Set(numbers)).sorted()
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
}
