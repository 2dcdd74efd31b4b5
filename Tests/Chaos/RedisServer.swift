import Foundation
import Synchronization
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A private redis-server that the harness starts, kills with SIGKILL and restarts on the same
/// port: a child process (`posix_spawn` through ``ChildProcess``, `--daemonize no`, so this
/// process owns and reaps it) on a free loopback port, with its own directory.
///
/// It writes `redis.pid` in its directory, so `Scripts/chaos` can stop it, and only it, if this
/// process dies without cleaning up.
final class RedisServer: Sendable {
    private struct State {
        var port: Int
        var current: ChildProcess?
        var launches: [ChildProcess] = []
        var hasStarted = false
    }

    /// The server's working directory (AOF files when persistence is on); kept across restarts.
    let directory: String
    private let persistence: [String]
    private let state: Mutex<State>

    /// - Parameter persistence: the persistence options, e.g. `--appendonly yes`.
    init(directory: String, persistence: [String]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        self.directory = directory
        self.persistence = persistence
        self.state = Mutex(State(port: Self.randomPort()))
    }

    /// `redis://127.0.0.1:PORT/0`, for `REDIS_URL`.
    var url: String { "redis://127.0.0.1:\(port)/0" }

    var port: Int { state.withLock { $0.port } }

    /// Everything the server logged, every launch.
    var log: [String] { state.withLock { $0.launches.flatMap(\.lines) } }

    /// Starts the server and waits until it accepts connections. Before the first start a port
    /// that turns out to be taken is replaced by another; afterwards the port never changes.
    func start() async throws {
        for _ in 0..<5 {
            let port = self.port
            let server = try ChildProcess(
                executable: "redis-server",
                arguments: [
                    "--port", "\(port)", "--bind", "127.0.0.1", "--daemonize", "no", "--dir", directory,
                    "--pidfile", directory + "/redis.pid", "--logfile", "",
                ] + persistence
            )
            state.withLock { $0.launches.append(server) }
            let ready = await server.waitUntil(timeout: .seconds(15)) { lines in
                lines.contains { $0.contains("Ready to accept connections") }
            }
            if ready {
                state.withLock {
                    $0.current = server
                    $0.hasStarted = true
                }
                return
            }
            await server.terminate()
            let portTaken = server.lines.contains { $0.contains("Address already in use") }
            let mayMove = state.withLock { !$0.hasStarted }
            guard portTaken, mayMove else {
                throw HarnessError("redis-server did not start on port \(port): \(server.summary)")
            }
            state.withLock { $0.port = Self.randomPort() }
        }
        throw HarnessError("redis-server found no free port in five attempts")
    }

    /// Kills the server with SIGKILL, as a crash would, and waits until it is reaped.
    func kill() async {
        guard let server = state.withLock({ $0.current.take() }) else { return }
        server.kill(SIGKILL)
        await server.waitForExit(timeout: .seconds(10))
    }

    /// Starts the server again on the same port and in the same directory.
    func restart() async throws {
        await kill()
        try await start()
    }

    /// Kills the server for good.
    func shutdown() async {
        await kill()
    }

    /// A port from 20000–32767: below Linux's ephemeral range, so a client reconnecting while
    /// the server is down is never handed it as its own local port.
    private static func randomPort() -> Int {
        Int.random(in: 20_000...32_767)
    }

    /// The path of `redis-server` on `PATH`, exported as ``ChildProcess``'s override for it.
    static func locate() throws {
        let variable = ChildProcess.overrideVariable(for: "redis-server")
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/redis-server"
            if FileManager.default.isExecutableFile(atPath: candidate) {
                setenv(variable, candidate, 1)
                return
            }
        }
        throw HarnessError("redis-server is not on PATH; Scripts/chaos installs it (apt-get install redis-server)")
    }
}
