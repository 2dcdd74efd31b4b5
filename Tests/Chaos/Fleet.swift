import Foundation
import Synchronization
import TestSupport

/// A publishing `abe-consumer-worker` and the numbers it was asked to publish.
struct Publisher {
    let process: ChildProcess
    let first: Int
    let count: Int

    /// What it attempted and acknowledged so far.
    var publication: Publication {
        Publication(first: first, count: count, lines: WorkerLines(process.lines))
    }
}

/// The worker processes of one scenario, started with its environment (provider variables win
/// over anything inherited, such as a `REDIS_URL` of `Scripts/test`), and all killed and reaped
/// when the scenario ends, whatever happened.
final class Fleet: Sendable {
    static let consumerWorker = "abe-consumer-worker"
    static let spoolWorker = "abe-spool-worker"

    private let all = Mutex<[ChildProcess]>([])
    private let servers = Mutex<[RedisServer]>([])
    private let variables = Mutex<[String: String]>([:])

    /// The variables every process started from now on gets.
    var environment: [String: String] {
        get { variables.withLock { $0 } }
        set { variables.withLock { $0 = newValue } }
    }

    /// Every process started so far, in start order.
    var processes: [ChildProcess] { all.withLock { $0 } }

    func start(_ executable: String, _ arguments: [String]) throws -> ChildProcess {
        let process = try ChildProcess(executable: executable, arguments: arguments, environment: environment)
        all.withLock { $0.append(process) }
        return process
    }

    /// An `abe-consumer-worker` consuming `key` as a member of `group`.
    func consumer(key: String, group: String, concurrency: Int, holdMilliseconds: Int) throws -> ChildProcess {
        try start(Self.consumerWorker, [key, group, "--concurrency", "\(concurrency)", "--hold-ms", "\(holdMilliseconds)"])
    }

    /// An `abe-consumer-worker` publishing `first..<first+count` to `key`, `rate` per second at most.
    func publisher(key: String, first: Int, count: Int, rate: Int? = nil) throws -> Publisher {
        let process = try start(Self.consumerWorker, ["publish", key, "\(first)", "\(count)"] + (rate.map { ["--rate", "\($0)"] } ?? []))
        return Publisher(process: process, first: first, count: count)
    }

    /// A private redis-server of this scenario (not started yet).
    func redisServer(directory: String, persistence: [String]) throws -> RedisServer {
        let server = try RedisServer(directory: directory, persistence: persistence)
        servers.withLock { $0.append(server) }
        return server
    }

    /// Kills and reaps every process and server still running, then writes what each printed
    /// into `logDirectory` (`<n>-<executable>.out` and `.err`), for a look after a failure.
    func shutdown(logDirectory: String) async throws {
        for process in processes { await process.terminate() }
        let servers = servers.withLock { $0 }
        for server in servers { await server.shutdown() }
        let logs = processes.map { ($0.executable, $0.lines.joined(separator: "\n"), $0.errorText) }
            + servers.map { ("redis-server", $0.log.joined(separator: "\n"), "") }
        try await onOwnThread("write-logs") {
            try FileManager.default.createDirectory(atPath: logDirectory, withIntermediateDirectories: true)
            for (index, (executable, output, errors)) in logs.enumerated() {
                let base = logDirectory + "/\(index)-\(executable)"
                try Data(output.utf8).write(to: URL(fileURLWithPath: base + ".out"))
                try Data(errors.utf8).write(to: URL(fileURLWithPath: base + ".err"))
            }
        }
    }

    /// Asks `consumers` to stop (closing their standard input, all at once, so they stop side by
    /// side) and returns, as failure texts, those that did not exit with 0.
    func stop(_ consumers: [ChildProcess]) async -> [String] {
        for consumer in consumers { consumer.closeInput() }
        var failures: [String] = []
        for consumer in consumers {
            let end = await consumer.stop(timeout: .seconds(20))
            if end != .exited(0) { failures.append("a worker did not stop cleanly: \(consumer.summary)") }
        }
        return failures
    }
}
