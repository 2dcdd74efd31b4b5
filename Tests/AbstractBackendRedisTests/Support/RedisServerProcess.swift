import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A private `redis-server` that a test owns: started, killed and restarted at will.
///
/// Tests that kill the server under a live backend cannot share the server `Scripts/test` starts,
/// so each of them runs its own: a child process (`--daemonize no`, so the test process owns it
/// and can signal and reap it) on a free loopback port, in a fresh temporary directory, persisting
/// nothing unless asked (`--save "" --appendonly no`, overridable through `extraArguments`).
///
/// No server outlives the test process: `deinit` kills it and removes the directory; an `atexit`
/// handler does both for instances still alive when the process exits (XCTest keeps test case
/// instances, and so their properties, alive until the end of the run); and a small watchdog shell
/// kills the server within about half a second if the test process dies without running either (a
/// crash, or a SIGKILL from a timeout; the directory then stays behind in the temporary folder).
///
/// ```swift
/// try XCTSkipUnless(RedisServerProcess.isAvailable, "redis-server is not on PATH")
/// let server = try RedisServerProcess(extraArguments: ["--appendonly", "yes"])
/// try await server.start()
/// // … a backend on server.url …
/// await server.kill()
/// try await server.restart()
/// ```
///
/// `@unchecked Sendable`: all mutable state (the child, the port before the first start) is
/// guarded by `lock`, and the methods may be called from any task.
final class RedisServerProcess: @unchecked Sendable {
    /// A failure to start the server or to talk to it; the message carries redis-server's log tail.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// Whether `redis-server` is on `PATH`; tests `XCTSkip` when it is not.
    static var isAvailable: Bool { executablePath != nil }

    /// The loopback port the server listens on. Fixed once the server has started, so that
    /// `restart()` comes back where clients expect it.
    var port: Int { lock.withLock { currentPort } }

    /// `redis://127.0.0.1:PORT`, for `REDIS_URL`.
    var url: String { "redis://127.0.0.1:\(port)" }

    /// The server's working directory (log, and AOF or RDB files when persistence is on). It
    /// survives `stop()`, `kill()` and `restart()` so a restarted server reloads what it persisted,
    /// and is removed in `deinit`.
    let directory: URL

    /// Whether the child process is running (a killed server counts as stopped once reaped).
    var isRunning: Bool { lock.withLock { child?.isRunning ?? false } }

    private let extraArguments: [String]
    private let lock = NSLock()
    private var currentPort: Int
    private var hasStarted = false
    private var child: Process?
    private var watchdog: Process?

    private var logURL: URL { directory.appendingPathComponent("redis.log") }

    /// Picks a free port and creates the directory; does not start the server.
    ///
    /// - Parameter extraArguments: appended to the command line after the defaults, so later
    ///   options win, e.g. `["--appendonly", "yes"]` for a server that survives `kill()`.
    init(extraArguments: [String] = []) throws {
        self.extraArguments = extraArguments
        currentPort = try Self.freePort()
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("abe-redis-\(UUID().uuidString)", isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        _ = Self.installExitHandler
        Self.leftovers.insert(directory: directory)
    }

    deinit {
        // Synchronous and bounded: SIGKILL ends the server at once; the short wait lets Foundation
        // reap it before the directory goes away.
        if let child {
            if child.isRunning { posixKill(child.processIdentifier, SIGKILL) }
            let deadline = ContinuousClock.now + .seconds(2)
            while child.isRunning, ContinuousClock.now < deadline { usleep(5_000) }
            Self.leftovers.remove(pid: child.processIdentifier)
        }
        try? FileManager.default.removeItem(at: directory)
        Self.leftovers.remove(directory: directory)
    }

    /// Starts the server and returns once it answers `PING` (bounded: 5 s).
    ///
    /// Before the first successful start, a port that was taken in the meantime is replaced by
    /// another; afterwards the port never changes, and a taken port is an error. Throws when the
    /// server is already running, or did not come up (with the end of its log).
    func start() async throws {
        var attempt = 1
        while true {
            let (process, port, logOffset) = try launch()
            do {
                try await waitUntilReady(process, port: port, logOffset: logOffset)
                lock.withLock { hasStarted = true }
                return
            } catch {
                // Also on cancellation: a server that is not ready is not left running.
                await terminate(process, signal: SIGKILL)
                let portTaken = error is Failure && log(since: logOffset).contains("Address already in use")
                let mayMove = lock.withLock { !hasStarted }
                guard portTaken, mayMove, attempt < 5 else { throw error }
                let newPort = try Self.freePort()
                lock.withLock { currentPort = newPort }
                attempt += 1
            }
        }
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it has exited.
    func kill() async {
        guard let process = lock.withLock({ child }) else { return }
        await terminate(process, signal: SIGKILL)
    }

    /// Stops the server with SIGTERM and waits until it has exited (SIGKILL after 5 s).
    func stop() async {
        guard let process = lock.withLock({ child }) else { return }
        await terminate(process, signal: SIGTERM)
    }

    /// Stops the server if it runs, then starts it again on the same port and in the same
    /// directory, so clients reconnect to the same URL and persisted data is reloaded.
    func restart() async throws {
        await stop()
        try await start()
    }

    /// Test utility: sends one command over a fresh connection and returns the first line of the
    /// reply, type marker included: `":3"` for `XLEN`, `"+OK"`, `"-ERR …"`, or just `"$5"` for a bulk
    /// string. Blocking (loopback, with 2 s socket timeouts), so meant for brief assertions.
    @discardableResult
    func command(_ arguments: String...) throws -> String {
        try Self.withConnection(port: port) { connection in
            try Self.authenticate(&connection, password: password)
            try connection.send(Self.resp(arguments))
            return try connection.readLine()
        }
    }

    // MARK: Process management

    /// Runs redis-server on the current port; no waiting. Returns the process, its port, and
    /// where its output starts in the log.
    private func launch() throws -> (Process, Int, UInt64) {
        guard let executable = Self.executablePath else {
            throw Failure(description: "redis-server is not on PATH")
        }
        return try lock.withLock {
            if let child, child.isRunning {
                throw Failure(description: "redis-server is already running on port \(currentPort)")
            }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = [
                "--port", "\(currentPort)", "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", directory.path, "--logfile", "",
            ] + extraArguments
            process.currentDirectoryURL = directory
            // Logs on stdout (--logfile ""), and early config errors on stderr, both into one file
            // that restarts append to.
            if !FileManager.default.fileExists(atPath: logURL.path) {
                _ = FileManager.default.createFile(atPath: logURL.path, contents: nil)
            }
            let log = try FileHandle(forWritingTo: logURL)
            defer { try? log.close() }
            let logOffset = try log.seekToEnd()
            process.standardInput = FileHandle.nullDevice
            process.standardOutput = log
            process.standardError = log
            try Self.withSignalsUnblocked { try process.run() }
            child = process
            Self.leftovers.insert(pid: process.processIdentifier)
            startWatchdog(for: process.processIdentifier)
            return (process, currentPort, logOffset)
        }
    }

    /// Polls with `Task.sleep` until the server answers `PING` and is the process we started
    /// (not another server that took the port first), or fails after 5 s or when it exits.
    private func waitUntilReady(_ process: Process, port: Int, logOffset: UInt64) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        let pid = process.processIdentifier
        while ContinuousClock.now < deadline {
            guard process.isRunning else {
                throw Failure(description: "redis-server exited during startup on port \(port):\n\(log(since: logOffset))")
            }
            if (try? Self.ping(port: port, password: password)) == true, (try? Self.serverProcessID(port: port, password: password)) == pid {
                return
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw Failure(description: "redis-server did not answer PING on port \(port) within 5 s:\n\(log(since: logOffset))")
    }

    /// Sends `signal` and waits until the process has exited: 5 s, then SIGKILL and 2 s more.
    private func terminate(_ process: Process, signal: Int32) async {
        let pid = process.processIdentifier
        if process.isRunning { posixKill(pid, signal) }
        if !(await waitForExit(process, within: .seconds(5))), signal != SIGKILL {
            posixKill(pid, SIGKILL)
            _ = await waitForExit(process, within: .seconds(2))
        }
        if !process.isRunning { Self.leftovers.remove(pid: pid) }
    }

    private func waitForExit(_ process: Process, within timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while process.isRunning, ContinuousClock.now < deadline {
            // A cancelled task's Task.sleep returns at once; sleep briefly instead of spinning.
            if Task.isCancelled {
                usleep(10_000)
            } else {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        return !process.isRunning
    }

    /// Runs `body` with no signal blocked on the current thread.
    ///
    /// A child inherits the signal mask of the thread that spawns it, and the threads of Swift's
    /// cooperative pool (libdispatch workers) block nearly every signal, SIGTERM included: without
    /// this, redis-server would ignore `stop()`'s SIGTERM. Foundation's `Process.run()` spawns on
    /// the calling thread; the previous mask is restored at once.
    private static func withSignalsUnblocked<T>(_ body: () throws -> T) rethrows -> T {
        var none = sigset_t()
        var previous = sigset_t()
        sigemptyset(&none)
        pthread_sigmask(SIG_SETMASK, &none, &previous)
        defer { pthread_sigmask(SIG_SETMASK, &previous, nil) }
        return try body()
    }

    /// A shell that kills `pid` if this test process dies first, and exits when `pid` does.
    /// Called with `lock` held.
    private func startWatchdog(for pid: Int32) {
        let watchdog = Process()
        watchdog.executableURL = URL(fileURLWithPath: "/bin/sh")
        watchdog.arguments = [
            "-c",
            #"while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 0.5; done; kill -0 "$1" 2>/dev/null || kill -9 "$2" 2>/dev/null; exit 0"#,
            "redis-watchdog", "\(getpid())", "\(pid)",
        ]
        watchdog.standardInput = FileHandle.nullDevice
        watchdog.standardOutput = FileHandle.nullDevice
        watchdog.standardError = FileHandle.nullDevice
        try? Self.withSignalsUnblocked { try watchdog.run() }   // best effort: deinit and atexit still cover normal exits
        self.watchdog = watchdog
    }

    /// The last lines the server logged from `offset` on (that is, in one launch).
    private func log(since offset: UInt64, lines: Int = 20) -> String {
        guard let data = try? Data(contentsOf: logURL), offset <= UInt64(data.count) else { return "(no log)" }
        let text = String(decoding: data[Int(offset)...], as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    // MARK: Process-wide cleanup

    /// The servers still running and the directories of instances still alive, for the `atexit`
    /// handler.
    private final class Leftovers: @unchecked Sendable {
        private let lock = NSLock()
        private var pids = Set<Int32>()
        private var directories = Set<String>()
        func insert(pid: Int32) { _ = lock.withLock { pids.insert(pid) } }
        func remove(pid: Int32) { _ = lock.withLock { pids.remove(pid) } }
        func insert(directory: URL) { _ = lock.withLock { directories.insert(directory.path) } }
        func remove(directory: URL) { _ = lock.withLock { directories.remove(directory.path) } }

        func cleanUp() {
            lock.withLock {
                for pid in pids { posixKill(pid, SIGKILL) }
                for path in directories { try? FileManager.default.removeItem(atPath: path) }
            }
        }
    }

    private static let leftovers = Leftovers()

    /// Evaluated once (static initialisers are lazy and thread-safe).
    private static let installExitHandler: Void = {
        atexit { RedisServerProcess.leftovers.cleanUp() }
    }()

    // MARK: Talking to the server

    /// The first `redis-server` on `PATH`, or nil.
    static var executablePath: String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// A loopback port nothing listens on, from 20000–32767: below Linux's ephemeral range, so a
    /// client reconnecting while the server is down cannot be handed the port as its own local
    /// port (a TCP self-connect would then occupy it and `restart()` would fail).
    private static func freePort() throws -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20000..<32768)
            if canBind(port: port) { return port }
        }
        throw Failure(description: "found no free loopback port in 20000–32767")
    }

    private static func canBind(port: Int) -> Bool {
        let fd = socket(AF_INET, socketStreamType, 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var yes: Int32 = 1
        // As redis-server binds: connections in TIME_WAIT from an earlier server do not block it.
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var address = loopback(port: port)
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }

    /// The `--requirepass` among the extra arguments, if any: readiness checks log in with it.
    private var password: String? {
        guard let index = extraArguments.firstIndex(of: "--requirepass"), index + 1 < extraArguments.count else { return nil }
        return extraArguments[index + 1]
    }

    private static func authenticate(_ connection: inout Connection, password: String?) throws {
        guard let password else { return }
        try connection.send(resp(["AUTH", password]))
        _ = try connection.readLine()
    }

    private static func ping(port: Int, password: String?) throws -> Bool {
        try withConnection(port: port) { connection in
            try authenticate(&connection, password: password)
            try connection.send(Array("PING\r\n".utf8))
            return try connection.readLine() == "+PONG"
        }
    }

    /// The `process_id` from `INFO server`, to tell our server from another on the same port.
    private static func serverProcessID(port: Int, password: String?) throws -> Int32? {
        try withConnection(port: port) { connection in
            try authenticate(&connection, password: password)
            try connection.send(resp(["INFO", "server"]))
            let header = try connection.readLine()
            guard header.hasPrefix("$"), let length = Int(header.dropFirst()), length >= 0 else { return nil }
            let body = String(decoding: try connection.read(count: length + 2), as: UTF8.self)
            for line in body.split(whereSeparator: \.isNewline) where line.hasPrefix("process_id:") {
                return Int32(line.dropFirst("process_id:".count))
            }
            return nil
        }
    }

    private static func resp(_ arguments: [String]) -> [UInt8] {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            let utf8 = Array(argument.utf8)
            bytes += Array("$\(utf8.count)\r\n".utf8) + utf8 + Array("\r\n".utf8)
        }
        return bytes
    }

    private static func withConnection<T>(port: Int, _ body: (inout Connection) throws -> T) throws -> T {
        var connection = try Connection(port: port)
        defer { close(connection.fd) }
        return try body(&connection)
    }

    /// A blocking loopback TCP connection with 2 s send and receive timeouts.
    private struct Connection {
        let fd: Int32
        private var buffer: [UInt8] = []

        init(port: Int) throws {
            fd = socket(AF_INET, RedisServerProcess.socketStreamType, 0)
            guard fd >= 0 else { throw Failure(description: "socket: \(String(cString: strerror(errno)))") }
            var timeout = timeval(tv_sec: 2, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            #if canImport(Darwin)
            var yes: Int32 = 1
            setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &yes, socklen_t(MemoryLayout<Int32>.size))
            #endif
            var address = RedisServerProcess.loopback(port: port)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            guard connected else {
                let message = String(cString: strerror(errno))
                close(fd)
                throw Failure(description: "connect to 127.0.0.1:\(port): \(message)")
            }
        }

        func send(_ bytes: [UInt8]) throws {
            var offset = 0
            while offset < bytes.count {
                // MSG_NOSIGNAL: a server that died mid-test must fail the call, not kill the test
                // process with SIGPIPE.
                let sent = bytes[offset...].withUnsafeBytes {
                    posixSend(fd, $0.baseAddress, $0.count, RedisServerProcess.noSignal)
                }
                guard sent > 0 else { throw Failure(description: "send: \(String(cString: strerror(errno)))") }
                offset += sent
            }
        }

        /// The next line, without its CRLF.
        mutating func readLine() throws -> String {
            while true {
                if let end = buffer.firstIndex(of: UInt8(ascii: "\n")), end > 0, buffer[end - 1] == UInt8(ascii: "\r") {
                    let line = String(decoding: buffer[..<(end - 1)], as: UTF8.self)
                    buffer.removeSubrange(...end)
                    return line
                }
                try fill()
            }
        }

        mutating func read(count: Int) throws -> [UInt8] {
            while buffer.count < count { try fill() }
            defer { buffer.removeFirst(count) }
            return Array(buffer[..<count])
        }

        private mutating func fill() throws {
            var chunk = [UInt8](repeating: 0, count: 4096)
            let received = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard received > 0 else {
                throw Failure(description: received == 0 ? "connection closed" : "recv: \(String(cString: strerror(errno)))")
            }
            buffer += chunk[..<received]
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        #if canImport(Darwin)
        address.sin_len = UInt8(MemoryLayout<sockaddr_in>.size)
        #endif
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = in_addr_t(UInt32(0x7F00_0001).bigEndian)
        return address
    }

    #if canImport(Glibc)
    private static let socketStreamType = Int32(SOCK_STREAM.rawValue)
    #else
    private static let socketStreamType = SOCK_STREAM
    #endif
    #if canImport(Darwin)
    private static let noSignal: Int32 = 0   // SO_NOSIGPIPE is set instead
    #else
    private static let noSignal = Int32(MSG_NOSIGNAL)
    #endif
}

// The C functions whose names the type's own methods (`kill()`, `send(_:)`) shadow inside it.
private func posixKill(_ pid: pid_t, _ signal: Int32) {
    _ = kill(pid, signal)
}

private func posixSend(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ flags: Int32) -> Int {
    send(fd, buffer, count, flags)
}
