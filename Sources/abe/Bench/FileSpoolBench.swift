import AbstractBackend
import AbstractBackendFileSpool
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file-spool lines of `abe bench`: every scenario on a fresh spool directory under one bench
/// root, plus the `fdatasync` baseline in the same root (same file system and device).
///
/// Lines, in order (each only when its scenario is selected):
/// - `fdatasync` `publish`: 4 KiB `pwrite` + `fdatasync` per record on one thread, `syncMessages`
///   records or 5 s (scenarios baseline, publish, publish-concurrent);
/// - `publish` under `always` (`syncMessages` messages: one `fdatasync` each) and under `never`;
/// - `publish-concurrent` (64 tasks) under `always` and under `never`;
/// - `consume` (prefilled, ack each) and `end-to-end` (4 producers, batches of 64, a window of
///   4096, like the Redis run), both under `always`, the default;
/// - `recovery`: a spool holding `recoveryMessages` messages (published under `never` in big
///   batches, then closed); the time to open a new backend on it and receive the first message.
struct FileSpoolBench {
    let root: BenchSpoolRoot
    let messages: Int
    let syncMessages: Int
    let recoveryMessages: Int

    typealias Policy = FileSpoolConfiguration.FsyncPolicy

    /// How many lines ``run(_:reporter:)`` prints for `scenarios`.
    static func lineCount(_ scenarios: [BenchCommand.Scenario]) -> Int {
        let wanted = Set(scenarios)
        var count = wanted.isDisjoint(with: [.baseline, .publish, .publishConcurrent]) ? 0 : 1
        if wanted.contains(.publish) { count += 2 }
        if wanted.contains(.publishConcurrent) { count += 2 }
        for scenario in [BenchCommand.Scenario.consume, .endToEnd, .recovery] where wanted.contains(scenario) { count += 1 }
        return count
    }

    func run(_ scenarios: [BenchCommand.Scenario], reporter: BenchReporter) async throws {
        let wanted = Set(scenarios)
        let standard = BenchMessages(count: messages)
        let few = BenchMessages(count: syncMessages)

        // One untimed round first, for first-touch page faults and lazy runtime set-up.
        reporter.begin("file-spool warm-up")
        _ = try await bench("warm-up", .never, BenchMessages(count: max(64, messages / 10))).publishConcurrent()

        if !wanted.isDisjoint(with: [.baseline, .publish, .publishConcurrent]) {
            try await reporter.line("fdatasync baseline") { try await FdatasyncBaseline.publish(directory: root.path, records: syncMessages) }
        }
        if wanted.contains(.publish) {
            try await reporter.line("file-spool publish (fsync always)") { try await bench("publish-always", .always, few).publish() }
        }
        if wanted.contains(.publishConcurrent) {
            try await reporter.line("file-spool publish-concurrent (fsync always)") { try await bench("publish-concurrent-always", .always, standard).publishConcurrent() }
        }
        if wanted.contains(.publish) {
            try await reporter.line("file-spool publish (fsync never)") { try await bench("publish-never", .never, standard).publish() }
        }
        if wanted.contains(.publishConcurrent) {
            try await reporter.line("file-spool publish-concurrent (fsync never)") { try await bench("publish-concurrent-never", .never, standard).publishConcurrent() }
        }
        if wanted.contains(.consume) {
            try await reporter.line("file-spool consume") { try await bench("consume", .always, standard).consume() }
        }
        if wanted.contains(.endToEnd) {
            try await reporter.line("file-spool end-to-end") { try await bench("end-to-end", .always, standard).endToEnd(producers: 4, producerBatch: 64, window: 4096) }
        }
        if wanted.contains(.recovery) {
            try await reporter.line("file-spool recovery") { try await recovery() }
        }
    }

    /// The scenarios of ``BackendBench`` on a new spool directory `name` under the root.
    private func bench(_ name: String, _ policy: Policy, _ messages: BenchMessages) -> BackendBench<FileSpoolBackend> {
        let directory = root.path + "/" + name
        return BackendBench(backendName: FileSpoolBackend.providerName, messages: messages, extraFields: [("fsync", "\"\(policy)\"")]) {
            try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: directory, fsync: policy))
        }
    }

    /// Fills a spool with `recoveryMessages` messages (under `never`, batches of 4096, then
    /// closed), then times opening a new backend on it (under `always`, the default) and receiving
    /// the first message. The page cache still holds the files: this is a process restart, not a
    /// cold boot.
    private func recovery() async throws -> BenchResult {
        let directory = root.path + "/recovery"
        let key = try MessageQueueKey("abe-bench")
        let body = JSONValue.string(String(repeating: "x", count: 76))
        func payload(_ sequence: Int) -> MessageQueuePayload { ["seq": .int(Int64(sequence)), "body": body] }

        let filler = try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: directory, fsync: .never))
        var next = 0
        while next < recoveryMessages {
            let range = next..<min(next + 4096, recoveryMessages)
            try await filler.publish(range.map { (key: key, payload: payload($0)) })
            next = range.upperBound
        }
        await filler.close()

        let start = ContinuousClock.now
        let backend = try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: directory))
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        let first = try await iterator.next()
        let seconds = (ContinuousClock.now - start).seconds
        guard let first, first.payload["seq"] == .int(0) else {
            await backend.close()
            throw BenchSpoolRoot.Failure(description: "recovery: the reopened spool delivered \(first.map { "\($0.payload)" } ?? "nothing") first, not message 0")
        }
        try await first.ack()
        await backend.close()
        return BenchResult(
            backend: FileSpoolBackend.providerName, scenario: "recovery", messages: recoveryMessages,
            payloadBytes: (try? payload(recoveryMessages - 1).jsonBytes().count) ?? 0, seconds: seconds, latency: nil,
            extra: [("fsync", "\"\(Policy.always)\"")], reportsThroughput: false
        )
    }
}

/// The directory the file-spool scenarios run in (`abe bench --spool-dir`).
///
/// It is removed when the run starts and when it ends. So that a mistyped `--spool-dir` cannot
/// delete someone's data, an existing directory is removed only when it is empty or holds the
/// marker file this type writes into every root it creates.
struct BenchSpoolRoot {
    static let markerName = ".abe-bench-root"

    /// The absolute path.
    let path: String

    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    /// Removes what a previous run left at `path`, then creates it (mode 0700) with its marker.
    static func prepare(_ path: String) throws -> BenchSpoolRoot {
        let manager = FileManager.default
        let absolute = path.hasPrefix("/") ? path : manager.currentDirectoryPath + "/" + path
        var status = stat()
        if lstat(absolute, &status) == 0 {
            guard status.st_mode & S_IFMT == S_IFDIR else {
                throw Failure(description: "--spool-dir \(absolute) exists and is not a directory (or is a symbolic link); remove it or choose another path")
            }
            let contents = try manager.contentsOfDirectory(atPath: absolute)
            guard contents.isEmpty || contents.contains(markerName) else {
                throw Failure(
                    description: "--spool-dir \(absolute) exists and was not made by abe bench (no \(markerName) in it); "
                        + "abe bench deletes its spool directory, so remove it yourself or choose another path"
                )
            }
            try manager.removeItem(atPath: absolute)
        }
        try manager.createDirectory(atPath: absolute, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        guard manager.createFile(atPath: absolute + "/" + markerName, contents: Data("made by abe bench; deleted with this directory\n".utf8)) else {
            throw Failure(description: "cannot write \(absolute)/\(markerName)")
        }
        return BenchSpoolRoot(path: absolute)
    }

    /// Deletes the root and everything in it.
    func remove() {
        try? FileManager.default.removeItem(atPath: path)
    }
}
