import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A helper executable of this package (such as `abe-spool-worker`) run as a child process that a
/// test owns: spawned with `posix_spawn`, its standard output collected line by line, its
/// standard input held open until ``closeInput()`` (which asks a consuming worker to stop), killed
/// at will, and always reaped.
///
/// Each child has three threads of its own: two read its output and error pipes to the end, one
/// waits for it to exit (`waitpid`), so the child is reaped as soon as it dies and never becomes a
/// zombie. ``terminate()`` (and `deinit`, as a last resort) kills and reaps a child still running.
///
/// The helpers write each line with one `write(2)` and never buffer, so after a `SIGKILL` the
/// lines read here are exactly the lines the child printed.
public final class ChildProcess: Sendable {
    /// Why a child could not be found, started or waited for.
    public struct Failure: Error, CustomStringConvertible {
        /// What went wrong and how to fix it.
        public let description: String

        /// Creates a failure that says `description`.
        public init(description: String) {
            self.description = description
        }
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

    /// The state the child's threads share with the test; a class, so the threads can hold it.
    private final class Shared: Sendable {
        let mutex = Mutex(State())

        func withLock<Result>(_ body: (inout State) -> Result) -> Result {
            mutex.withLock { body(&$0) }
        }
    }

    /// The child's process id.
    public let pid: pid_t
    /// The executable's name, as given to ``init(executable:arguments:environment:)``.
    public let executable: String
    /// The arguments after the executable's path.
    public let arguments: [String]
    private let state = Shared()

    /// The variable that overrides where `executable` is looked for: its name in upper case with
    /// `-` as `_`, so `ABE_SPOOL_WORKER` for `abe-spool-worker`.
    public static func overrideVariable(for executable: String) -> String {
        executable.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    /// The path of `executable` next to the test bundle, in the build products directory
    /// (`.build/debug`, or whatever `--scratch-path` chose), or `nil` when it is not there. The
    /// variable ``overrideVariable(for:)`` names overrides it with a path of its own.
    public static func executablePath(_ executable: String) -> String? {
        let fileManager = FileManager.default
        if let path = ProcessInfo.processInfo.environment[overrideVariable(for: executable)], fileManager.isExecutableFile(atPath: path) {
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
                let candidate = directory.appendingPathComponent(executable).path
                // Directories are "executable" too; a build folder may hold one of that name.
                var isDirectory: ObjCBool = false
                if fileManager.fileExists(atPath: candidate, isDirectory: &isDirectory), !isDirectory.boolValue,
                   fileManager.isExecutableFile(atPath: candidate) {
                    return candidate
                }
                directory.deleteLastPathComponent()
            }
        }
        return nil
    }

    /// The error for an `executable` that ``executablePath(_:)`` does not find, saying how to fix it.
    public static func notFound(_ executable: String) -> Failure {
        Failure(description: "\(executable) was not found next to the test bundle (\(Bundle.main.bundleURL.path)); build it with `swift build --build-tests` or set \(overrideVariable(for: executable))")
    }

    /// Starts `executable <arguments>` with this process's environment plus `environment`
    /// (whose values win).
    public init(executable: String, arguments: [String], environment: [String: String] = [:]) throws {
        guard let path = Self.executablePath(executable) else { throw Self.notFound(executable) }
        self.executable = executable
        self.arguments = arguments
        let input = try Self.makePipe()
        let output = try Self.makePipe()
        let errors = try Self.makePipe()

        #if canImport(Darwin)
        var actions: posix_spawn_file_actions_t?
        var attributes: posix_spawnattr_t?
        #else
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        #endif
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the copies; the originals (close-on-exec) vanish at exec.
        posix_spawn_file_actions_adddup2(&actions, input.read, 0)
        posix_spawn_file_actions_adddup2(&actions, output.write, 1)
        posix_spawn_file_actions_adddup2(&actions, errors.write, 2)

        let argv: [UnsafeMutablePointer<CChar>?] = ([path] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let variables = ProcessInfo.processInfo.environment.merging(environment) { _, added in added }
        let envp: [UnsafeMutablePointer<CChar>?] = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp { free(pointer) } }
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
            envp.withUnsafeBufferPointer { envpBuffer in
                posix_spawn(&pid, path, &actions, &attributes, argvBuffer.baseAddress!, envpBuffer.baseAddress!)
            }
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
        outputReader.name = "child-\(pid)-stdout"
        outputReader.start()
        let errorReader = Thread {
            Self.readAll(errors) { bytes in state.withLock { $0.errorText += bytes } }
            state.withLock { $0.errorClosed = true }
        }
        errorReader.name = "child-\(pid)-stderr"
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
        reaper.name = "child-\(pid)-wait"
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

    /// Every complete line the child printed so far.
    public var lines: [String] { state.withLock { $0.lines } }

    /// What the child wrote to standard error so far.
    public var errorText: String { state.withLock { String(decoding: $0.errorText, as: UTF8.self) } }

    /// Whether the child has exited (and was reaped).
    public var hasExited: Bool { state.withLock { $0.status != nil } }

    /// How the child ended; `nil` while it runs.
    public var termination: Termination? {
        guard let status = state.withLock({ $0.status }) else { return nil }
        if status == -1 { return .unknown }
        if status & 0x7f == 0 { return .exited((status >> 8) & 0xff) }
        return .signalled(status & 0x7f)
    }

    /// How a child ended.
    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        /// It exited with this code.
        case exited(Int32)
        /// A signal with this number killed it.
        case signalled(Int32)
        /// `waitpid` failed, so how it ended is not known.
        case unknown

        /// How the child ended, in words: `exited with 0`, `killed by signal 9`.
        public var description: String {
            switch self {
            case .exited(let code): return "exited with \(code)"
            case .signalled(let signal): return "killed by signal \(signal)"
            case .unknown: return "ended (status unknown)"
            }
        }
    }

    /// A one-line summary for failure messages.
    public var summary: String {
        let lines = self.lines
        let tail = lines.suffix(3).joined(separator: " | ")
        return "\(executable) \(pid) [\(arguments.joined(separator: " "))]: \(termination.map(\.description) ?? "running"), "
            + "\(lines.count) lines (last: \(tail)); stderr: \(errorText.trimmingCharacters(in: .whitespacesAndNewlines))"
    }

    /// Waits until `condition` holds for the lines printed so far, or `timeout` passes, or the
    /// child has exited and printed everything without satisfying it. Returns whether it holds.
    @discardableResult
    public func waitUntil(timeout: Duration, _ condition: ([String]) -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let (lines, finished) = state.withLock { ($0.lines, $0.outputClosed && $0.status != nil) }
            if condition(lines) { return true }
            if finished || ContinuousClock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    /// Waits (bounded) for the child's `ready` line.
    public func waitUntilReady(timeout: Duration = .seconds(20)) async throws {
        guard await waitUntil(timeout: timeout, { $0.contains("ready") }) else {
            throw Failure(description: "no \"ready\" within \(timeout): \(summary)")
        }
    }

    // MARK: Controlling

    /// Closes the child's standard input: a consuming worker stops, closes its backend and exits.
    public func closeInput() {
        let descriptor = state.withLock { state -> Int32 in
            defer { state.inputDescriptor = -1 }
            return state.inputDescriptor
        }
        if descriptor >= 0 { close(descriptor) }
    }

    /// Sends `signal` to the child unless it has already been reaped (its pid may be reused).
    public func kill(_ signal: Int32 = SIGKILL) {
        state.withLock { state in
            if state.status == nil { _ = sendSignal(pid, signal) }
        }
    }

    /// Waits until the child has exited and its output is read to the end. Returns how it
    /// ended, or `nil` when it is still running after `timeout`.
    @discardableResult
    public func waitForExit(timeout: Duration = .seconds(20)) async -> Termination? {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if state.withLock({ $0.status != nil && $0.outputClosed && $0.errorClosed }) { return termination }
            try? await Task.sleep(for: .milliseconds(2))
        }
        return nil
    }

    /// Kills the child unless it has exited, and waits for it to be reaped (bounded).
    public func terminate() async {
        closeInput()
        kill(SIGKILL)
        await waitForExit(timeout: .seconds(10))
    }

    /// Asks a consuming worker to stop by closing its standard input; kills it when it has not
    /// exited within `timeout`. Returns how it ended.
    @discardableResult
    public func stop(timeout: Duration = .seconds(10)) async -> Termination? {
        closeInput()
        if let termination = await waitForExit(timeout: timeout) { return termination }
        await terminate()
        return termination
    }
}

/// `kill(2)`, under a name that the child's own `kill(_:)` does not shadow.
private func sendSignal(_ pid: pid_t, _ signal: Int32) -> Int32 {
    kill(pid, signal)
}
