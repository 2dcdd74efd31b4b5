import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis
import ArgumentParser
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure publish, consume and end-to-end throughput; print one JSON object per line.",
        discussion: """
            Each line has backend, scenario, messages, payload_bytes, seconds, msgs_per_sec, p50_us, \
            p99_us, cpu_us_per_msg (this process's CPU time per message) and server_cpu_us_per_msg (the \
            Redis server's, from INFO cpu; null for other providers). Scenarios: publish (1 task, \
            awaiting each call), publish-concurrent (64 tasks), publish-batch (batches of 256), consume \
            (prefilled, ack each), end-to-end (one producer and one consumer at once; latency is publish \
            to ack). The asyncstream line is the same \
            end-to-end loop over a plain AsyncStream, measured in the same run as a baseline; the \
            thread-handoff line is the publish-concurrent loop where each call only hands its \
            continuation to a thread of its own that resumes it (the ceiling of a provider doing \
            its I/O on an owned thread). \
            Payloads (about 100 bytes of JSON) are built before timing starts; consumers sample \
            latency on every 16th message. The redis backend runs against REDIS_URL, each scenario \
            under a fresh key prefix (abe-bench/<random>/), with --redis-messages messages; its \
            end-to-end run has 4 producer tasks publishing batches of 64 that pause while 4096 messages \
            are unreceived (producers, producer_batch and window in the line).

            The file-spool backend runs every scenario on a fresh spool directory under --spool-dir \
            (default ./.abe-bench-spool, deleted when the run starts and ends), each line naming its \
            fsync policy: publish under always (--spool-sync-messages messages, default 2000: one \
            fdatasync each) and under never (--spool-messages, default 100000); publish-concurrent \
            (64 tasks) under always and never, consume and end-to-end under always (--spool-messages \
            each; end-to-end with producers like the redis run); recovery, which fills a spool with \
            --spool-recovery-messages messages (default 1000000) and times opening a new backend on \
            it and receiving the first message (msgs_per_sec is null); no publish-batch. Its \
            baseline, the fdatasync line, appends 4 KiB records to a file in the same directory \
            with pwrite and fdatasync each, one thread, --spool-sync-messages records or 5 s; it \
            runs with the baseline, publish or publish-concurrent scenario.

            Build in release mode for meaningful numbers: Scripts/bench does.
            """
    )

    enum Scenario: String, CaseIterable, ExpressibleByArgument {
        case publish
        case publishConcurrent = "publish-concurrent"
        case publishBatch = "publish-batch"
        case consume
        case endToEnd = "end-to-end"
        case baseline
        case recovery
    }

    enum Backend: String, CaseIterable, ExpressibleByArgument {
        case memory
        case fileSpool = "file-spool"
        case redis
    }

    @Option(name: .long, help: "Messages per in-memory scenario.")
    var messages: Int = 1_000_000

    @Option(name: .long, help: "Messages per scenario for the redis backend.")
    var redisMessages: Int = 200_000

    @Option(name: .long, help: "Backends to measure (repeatable): memory, file-spool, redis. Default: memory and file-spool, and redis when REDIS_URL is set.")
    var backend: [Backend] = []

    @Option(name: .long, help: "Messages per file-spool scenario, except publish under fsync always and recovery.")
    var spoolMessages: Int = 100_000

    @Option(name: .long, help: "Messages of the file-spool publish scenario under fsync always (1 task, one fdatasync each), and records of the fdatasync baseline (which also stops after 5 s).")
    var spoolSyncMessages: Int = 2_000

    @Option(name: .long, help: "Messages in the spool the file-spool recovery scenario reopens.")
    var spoolRecoveryMessages: Int = 1_000_000

    @Option(name: .long, help: "The directory the file-spool scenarios run in; deleted at the start and end of the run, and refused if it exists and was not made by abe bench.")
    var spoolDir: String = "./.abe-bench-spool"

    @Option(name: .long, help: "Scenarios to run (repeatable): \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.")
    var scenario: [Scenario] = []

    func validate() throws {
        guard messages >= 64 else { throw ValidationError("--messages must be at least 64") }
        guard redisMessages >= 64 else { throw ValidationError("--redis-messages must be at least 64") }
        guard spoolMessages >= 64 else { throw ValidationError("--spool-messages must be at least 64") }
        guard spoolSyncMessages >= 1 else { throw ValidationError("--spool-sync-messages must be at least 1") }
        guard spoolRecoveryMessages >= 1 else { throw ValidationError("--spool-recovery-messages must be at least 1") }
        guard !spoolDir.isEmpty else { throw ValidationError("--spool-dir must not be empty") }
    }

    func run() async throws {
        let scenarios = scenario.isEmpty ? Scenario.allCases : scenario
        let environment = ProcessInfo.processInfo.environment
        let backends = backend.isEmpty ? [.memory, .fileSpool] + (environment[RedisConfiguration.Variable.url] == nil ? [] : [.redis]) : backend
        let lines = backends.reduce(0) { total, backend in
            switch backend {
            case .memory: total + scenarios.filter { $0 != .recovery }.count + (scenarios.contains(.baseline) ? 1 : 0)
            case .fileSpool: total + FileSpoolBench.lineCount(scenarios)
            case .redis: total + scenarios.filter { $0 != .baseline && $0 != .recovery }.count
            }
        }
        let reporter = BenchReporter(total: lines)
        do {
            for backend in backends {
                switch backend {
                case .memory: try await runMemory(scenarios, reporter: reporter)
                case .fileSpool: try await runFileSpool(scenarios, reporter: reporter)
                case .redis: try await runRedis(scenarios, environment: environment, reporter: reporter)
                }
            }
        } catch {
            reporter.finish()
            throw error
        }
        reporter.finish()
    }

    private func runFileSpool(_ scenarios: [Scenario], reporter: BenchReporter) async throws {
        let root = try BenchSpoolRoot.prepare(spoolDir)
        defer { root.remove() }
        let bench = FileSpoolBench(root: root, messages: spoolMessages, syncMessages: spoolSyncMessages, recoveryMessages: spoolRecoveryMessages)
        try await bench.run(scenarios, reporter: reporter)
    }

    private func runMemory(_ scenarios: [Scenario], reporter: BenchReporter) async throws {
        let messages = BenchMessages(count: messages)
        // Publish-only and prefilled scenarios need room for every message; end-to-end runs with
        // the default capacity, so backpressure is part of what it measures.
        let memory = BackendBench(backendName: InMemoryBackend.providerName, messages: messages, extraFields: []) {
            var configuration = InMemoryBackend.Configuration()
            configuration.capacity = max(configuration.capacity, messages.count)
            return InMemoryBackend(configuration: configuration)
        }
        let memoryWithDefaults = BackendBench(backendName: InMemoryBackend.providerName, messages: messages, extraFields: []) {
            InMemoryBackend()
        }
        // One untimed round first, so the first timed scenario does not pay for first-touch page
        // faults and lazy runtime set-up that the others then skip.
        let warmUp = BackendBench(backendName: InMemoryBackend.providerName, messages: BenchMessages(count: max(64, messages.count / 10)), extraFields: []) {
            InMemoryBackend()
        }
        reporter.begin("memory warm-up")
        _ = try await warmUp.endToEnd()
        _ = await AsyncStreamBaseline.endToEnd(messages: BenchMessages(count: max(64, messages.count / 10)))
        for scenario in scenarios {
            let run: () async throws -> BenchResult
            switch scenario {
            case .publish: run = { try await memory.publish() }
            case .publishConcurrent: run = { try await memory.publishConcurrent() }
            case .publishBatch: run = { try await memory.publishBatch() }
            case .consume: run = { try await memory.consume() }
            case .endToEnd: run = { try await memoryWithDefaults.endToEnd() }
            case .baseline: run = { await AsyncStreamBaseline.endToEnd(messages: messages) }
            case .recovery: continue
            }
            try await reporter.line(scenario == .baseline ? "asyncstream end-to-end" : "memory \(scenario.rawValue)", run)
        }
        if scenarios.contains(.baseline) {
            try await reporter.line("thread-handoff publish-concurrent") { try await ThreadHandoffBaseline.publishConcurrent(messages: messages) }
        }
    }

    private func runRedis(_ scenarios: [Scenario], environment: [String: String], reporter: BenchReporter) async throws {
        let base = try RedisConfiguration(environment: environment)
        var redis = BackendBench(backendName: RedisBackend.providerName, messages: BenchMessages(count: redisMessages), extraFields: []) {
            var configuration = base
            configuration.keyPrefix = base.keyPrefix + "abe-bench/\(UInt32.random(in: 0...UInt32.max))/"
            return try RedisBackend(configuration: configuration)
        }
        // A connection of its own reads the server's CPU time, outside the measured backend's pipeline.
        let probe = try RedisBackend(configuration: base)
        redis.serverCPU = { try? await probe.serverCPUSeconds() }
        do {
            try await runRedis(scenarios, on: redis, reporter: reporter)
        } catch {
            await probe.close()
            throw error
        }
        await probe.close()
    }

    private func runRedis(_ scenarios: [Scenario], on redis: BackendBench<RedisBackend>, reporter: BenchReporter) async throws {
        for scenario in scenarios {
            let run: () async throws -> BenchResult
            switch scenario {
            case .publish: run = { try await redis.publish() }
            case .publishConcurrent: run = { try await redis.publishConcurrent() }
            case .publishBatch: run = { try await redis.publishBatch() }
            case .consume: run = { try await redis.consume() }
            case .endToEnd: run = { try await redis.endToEnd(producers: 4, producerBatch: 64, window: 4096) }
            case .baseline, .recovery: continue
            }
            try await reporter.line("redis \(scenario.rawValue)", run)
        }
    }
}
