import AbstractBackend
import AbstractBackendInMemory
import AbstractBackendRedis
import ArgumentParser
import Foundation

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure publish, consume and end-to-end throughput; print one JSON object per line.",
        discussion: """
            Each line has backend, scenario, messages, payload_bytes, seconds, msgs_per_sec, p50_us and \
            p99_us. Scenarios: publish (1 task, awaiting each call), publish-concurrent (64 tasks), \
            publish-batch (batches of 256), consume (prefilled, ack each), end-to-end (one producer and \
            one consumer at once; latency is publish to ack). The asyncstream line is the same \
            end-to-end loop over a plain AsyncStream, measured in the same run as a baseline. \
            Payloads (about 100 bytes of JSON) are built before timing starts; consumers sample \
            latency on every 16th message. The redis backend runs against REDIS_URL, each scenario \
            under a fresh key prefix (abe-bench/<random>/), with --redis-messages messages; its \
            end-to-end run has 4 producer tasks publishing batches of 64 that pause while 4096 messages \
            are unreceived (producers, producer_batch and window in the line).
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
    }

    enum Backend: String, CaseIterable, ExpressibleByArgument {
        case memory
        case redis
    }

    @Option(name: .long, help: "Messages per scenario.")
    var messages: Int = 1_000_000

    @Option(name: .long, help: "Messages per scenario for the redis backend.")
    var redisMessages: Int = 200_000

    @Option(name: .long, help: "Backends to measure (repeatable): memory, redis. Default: memory, and redis when REDIS_URL is set.")
    var backend: [Backend] = []

    @Option(name: .long, help: "Scenarios to run (repeatable): \(Scenario.allCases.map(\.rawValue).joined(separator: ", ")). Default: all.")
    var scenario: [Scenario] = []

    func validate() throws {
        guard messages >= 64 else { throw ValidationError("--messages must be at least 64") }
        guard redisMessages >= 64 else { throw ValidationError("--redis-messages must be at least 64") }
    }

    func run() async throws {
        let scenarios = scenario.isEmpty ? Scenario.allCases : scenario
        let environment = ProcessInfo.processInfo.environment
        let backends = backend.isEmpty ? (environment[RedisConfiguration.Variable.url] == nil ? [.memory] : [.memory, .redis]) : backend
        for backend in backends {
            switch backend {
            case .memory: try await runMemory(scenarios)
            case .redis: try await runRedis(scenarios, environment: environment)
            }
        }
    }

    private func runMemory(_ scenarios: [Scenario]) async throws {
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
        _ = try await warmUp.endToEnd()
        _ = await AsyncStreamBaseline.endToEnd(messages: BenchMessages(count: max(64, messages.count / 10)))
        for scenario in scenarios {
            let line: BenchResult
            switch scenario {
            case .publish: line = try await memory.publish()
            case .publishConcurrent: line = try await memory.publishConcurrent()
            case .publishBatch: line = try await memory.publishBatch()
            case .consume: line = try await memory.consume()
            case .endToEnd: line = try await memoryWithDefaults.endToEnd()
            case .baseline: line = await AsyncStreamBaseline.endToEnd(messages: messages)
            }
            print(line.jsonLine)
        }
    }

    private func runRedis(_ scenarios: [Scenario], environment: [String: String]) async throws {
        let base = try RedisConfiguration(environment: environment)
        let redis = BackendBench(backendName: RedisBackend.providerName, messages: BenchMessages(count: redisMessages), extraFields: []) {
            var configuration = base
            configuration.keyPrefix = base.keyPrefix + "abe-bench/\(UInt32.random(in: 0...UInt32.max))/"
            return try RedisBackend(configuration: configuration)
        }
        for scenario in scenarios where scenario != .baseline {
            let line: BenchResult
            switch scenario {
            case .publish: line = try await redis.publish()
            case .publishConcurrent: line = try await redis.publishConcurrent()
            case .publishBatch: line = try await redis.publishBatch()
            case .consume: line = try await redis.consume()
            case .endToEnd: line = try await redis.endToEnd(producers: 4, producerBatch: 64, window: 4096)
            case .baseline: continue
            }
            print(line.jsonLine)
        }
    }
}
