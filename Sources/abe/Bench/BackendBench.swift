import AbstractBackend
import Synchronization

/// The scenarios of `abe bench`, run against one provider through the public API only.
///
/// Each scenario gets a fresh backend from `makeBackend` and closes it afterwards.
struct BackendBench<Backend: MessageQueueBackend> {
    let backendName: String
    let messages: BenchMessages
    let extraFields: [(String, String)]
    let makeBackend: () async throws -> Backend
    /// Reads the server's CPU time, for providers that have a server (Redis).
    var serverCPU: ServerCPUProbe?

    private var key: MessageQueueKey { get throws { try MessageQueueKey("abe-bench") } }

    private func result(_ scenario: String, timing: BenchTiming, latencies: inout [Int64]) -> BenchResult {
        BenchResult(
            backend: backendName, scenario: scenario, messages: messages.count, payloadBytes: messages.payloadBytes,
            timing: timing, latency: LatencySummary(nanoseconds: &latencies), extra: extraFields
        )
    }

    /// One task publishing, awaiting each call; latency is per call.
    func publish() async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var latencies = [Int64](repeating: 0, count: messages.count)
        let stopwatch = await BenchStopwatch.start(serverCPU: serverCPU)
        for sequence in 0..<messages.count {
            let payload = messages.send(sequence)
            try await backend.publish(payload, to: key)
            latencies[sequence] = messages.age(ofSent: sequence)
        }
        let timing = await stopwatch.stop()
        await backend.close()
        return result("publish", timing: timing, latencies: &latencies)
    }

    /// `tasks` tasks publishing at once, all messages in all; latency is per call.
    func publishConcurrent(tasks: Int = 64) async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var (timing, latencies) = try await messages.publishConcurrently(tasks: tasks, serverCPU: serverCPU) { payload in
            try await backend.publish(payload, to: key)
        }
        await backend.close()
        return result("publish-concurrent", timing: timing, latencies: &latencies)
    }

    /// One task publishing batches of `batchSize`; latency is per batch.
    func publishBatch(batchSize: Int = 256) async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var latencies = [Int64]()
        let stopwatch = await BenchStopwatch.start(serverCPU: serverCPU)
        var next = 0
        while next < messages.count {
            let range = next..<min(next + batchSize, messages.count)
            let batch = range.map { (key: key, payload: messages.send($0)) }
            try await backend.publish(batch)
            latencies.append(messages.age(ofSent: range.lowerBound))
            next = range.upperBound
        }
        let timing = await stopwatch.stop()
        await backend.close()
        return result("publish-batch", timing: timing, latencies: &latencies)
    }

    /// Prefilled with every message, then one consumer receives and acknowledges each.
    func consume() async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var next = 0
        while next < messages.count {
            let range = next..<min(next + 1024, messages.count)
            try await backend.publish(range.map { (key: key, payload: messages.payloads[$0]) })
            next = range.upperBound
        }
        let stopwatch = await BenchStopwatch.start(serverCPU: serverCPU)
        var received = 0
        for try await message in backend.consume(keys: [key], group: nil) {
            try await message.ack()
            received += 1
            if received == messages.count { break }
        }
        let timing = await stopwatch.stop()
        await backend.close()
        var none: [Int64] = []
        return result("consume", timing: timing, latencies: &none)
    }

    /// Producers and one consumer at once; latency is publish→ack.
    ///
    /// With one producer and `producerBatch` 1 the producer awaits each `publish` — the in-memory
    /// scenario. A network provider's producer cannot keep up that way (each awaited call is a
    /// round trip), so its run uses `producers` tasks publishing batches of `producerBatch`, and
    /// producers pause while more than `window` messages are published and not yet received, so
    /// that the run measures sustained throughput at a bounded backlog (a provider without
    /// backpressure would otherwise measure a publish burst followed by a drain).
    func endToEnd(producers: Int = 1, producerBatch: Int = 1, window: Int? = nil) async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        let messages = messages
        // With several producers the consumer times every message whose send time is recorded;
        // only this run's sampled sends may be.
        messages.resetSendTimes()
        let progress = BenchProgress()
        let stopwatch = await BenchStopwatch.start(serverCPU: serverCPU)
        let consumer = Task {
            var latencies = [Int64]()
            latencies.reserveCapacity(messages.count / BenchMessages.sampleInterval + 1)
            var received = 0
            for try await message in backend.consume(keys: [key], group: nil) {
                try await message.ack()
                received += 1
                if window != nil { progress.received.store(received, ordering: .relaxed) }
                // One producer delivers in order, so the received count says which messages were
                // timed; with several, each message's own sequence number does.
                if producers > 1 || BenchMessages.isSampled(received: received), let age = messages.age(of: message.payload) {
                    latencies.append(age)
                }
                if received == messages.count { break }
            }
            return latencies
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for producer in 0..<producers {
                group.addTask {
                    // Producer p publishes the p-th block of `producerBatch` messages of every round.
                    var first = producer * producerBatch
                    while first < messages.count {
                        if let window {
                            while first - progress.received.load(ordering: .relaxed) > window {
                                try await Task.sleep(for: .microseconds(100))
                            }
                        }
                        let range = first..<min(first + producerBatch, messages.count)
                        if range.count == 1 {
                            try await backend.publish(messages.sendSampled(range.lowerBound), to: key)
                        } else {
                            try await backend.publish(range.map { (key: key, payload: messages.sendSampled($0)) })
                        }
                        first += producers * producerBatch
                    }
                }
            }
            try await group.waitForAll()
        }
        var latencies = try await consumer.value
        let timing = await stopwatch.stop()
        await backend.close()
        var line = result("end-to-end", timing: timing, latencies: &latencies)
        if producers > 1 { line.extra.append(("producers", "\(producers)")) }
        if producerBatch > 1 { line.extra.append(("producer_batch", "\(producerBatch)")) }
        if let window { line.extra.append(("window", "\(window)")) }
        return line
    }
}

/// How far the consumer of an end-to-end run has got, for producers that pace themselves.
private final class BenchProgress: Sendable {
    let received = Atomic<Int>(0)
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

extension BenchMessages {
    /// The loop of `publish-concurrent`: `tasks` tasks, task `t` calling `publish` with messages
    /// `t`, `t + tasks`, …, each call timed. Returns the timing of all and every call's latency.
    func publishConcurrently(
        tasks: Int,
        serverCPU: ServerCPUProbe? = nil,
        _ publish: @escaping @Sendable (MessageQueuePayload) async throws -> Void
    ) async throws -> (timing: BenchTiming, latencies: [Int64]) {
        let messages = self
        let stopwatch = await BenchStopwatch.start(serverCPU: serverCPU)
        let latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var latencies = [Int64]()
                    latencies.reserveCapacity(messages.count / tasks + 1)
                    for sequence in stride(from: task, to: messages.count, by: tasks) {
                        let payload = messages.send(sequence)
                        try await publish(payload)
                        latencies.append(messages.age(ofSent: sequence))
                    }
                    return latencies
                }
            }
            var all = [Int64]()
            all.reserveCapacity(messages.count)
            for try await part in group { all += part }
            return all
        }
        return (await stopwatch.stop(), latencies)
    }
}
