import AbstractBackend

/// The scenarios of `abe bench`, run against one provider through the public API only.
///
/// Each scenario gets a fresh backend from `makeBackend` and closes it afterwards.
struct BackendBench<Backend: MessageQueueBackend> {
    let backendName: String
    let messages: Int
    let extraFields: [(String, String)]
    let makeBackend: () async throws -> Backend

    private var key: MessageQueueKey { get throws { try MessageQueueKey("abe-bench") } }

    private func result(_ scenario: String, seconds: Double, latencies: inout [Int64]) -> BenchResult {
        BenchResult(
            backend: backendName, scenario: scenario, messages: messages, payloadBytes: BenchPayload.byteCount,
            seconds: seconds, latency: LatencySummary(nanoseconds: &latencies), extra: extraFields
        )
    }

    /// One task publishing, awaiting each call; latency is per call.
    func publish() async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var latencies = [Int64](repeating: 0, count: messages)
        let start = ContinuousClock.now
        for sequence in 0..<messages {
            let payload = BenchPayload.make(sequence: sequence)
            try await backend.publish(payload, to: key)
            latencies[sequence] = BenchPayload.age(of: payload)
        }
        let seconds = (ContinuousClock.now - start).seconds
        await backend.close()
        return result("publish", seconds: seconds, latencies: &latencies)
    }

    /// `tasks` tasks publishing at once, `messages` in all; latency is per call.
    func publishConcurrent(tasks: Int = 64) async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        let share = messages / tasks
        let start = ContinuousClock.now
        var latencies = try await withThrowingTaskGroup(of: [Int64].self) { group in
            for task in 0..<tasks {
                let count = task == tasks - 1 ? messages - share * (tasks - 1) : share
                group.addTask {
                    var latencies = [Int64]()
                    latencies.reserveCapacity(count)
                    for sequence in 0..<count {
                        let payload = BenchPayload.make(sequence: task * share + sequence)
                        try await backend.publish(payload, to: key)
                        latencies.append(BenchPayload.age(of: payload))
                    }
                    return latencies
                }
            }
            var all = [Int64]()
            all.reserveCapacity(messages)
            for try await part in group { all += part }
            return all
        }
        let seconds = (ContinuousClock.now - start).seconds
        await backend.close()
        return result("publish-concurrent", seconds: seconds, latencies: &latencies)
    }

    /// One task publishing batches of `batchSize`; latency is per batch.
    func publishBatch(batchSize: Int = 256) async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var latencies = [Int64]()
        let start = ContinuousClock.now
        var sequence = 0
        while sequence < messages {
            let count = min(batchSize, messages - sequence)
            let batch = (sequence..<sequence + count).map { (key: key, payload: BenchPayload.make(sequence: $0)) }
            try await backend.publish(batch)
            latencies.append(BenchPayload.age(of: batch[0].payload))
            sequence += count
        }
        let seconds = (ContinuousClock.now - start).seconds
        await backend.close()
        return result("publish-batch", seconds: seconds, latencies: &latencies)
    }

    /// Prefilled with `messages`, then one consumer receives and acknowledges each.
    func consume() async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        var sequence = 0
        while sequence < messages {
            let count = min(1024, messages - sequence)
            try await backend.publish((sequence..<sequence + count).map { (key: key, payload: BenchPayload.make(sequence: $0)) })
            sequence += count
        }
        let start = ContinuousClock.now
        var received = 0
        for try await message in backend.consume(keys: [key], group: nil) {
            try await message.ack()
            received += 1
            if received == messages { break }
        }
        let seconds = (ContinuousClock.now - start).seconds
        await backend.close()
        var none: [Int64] = []
        return result("consume", seconds: seconds, latencies: &none)
    }

    /// One producer task and one consumer task at once; latency is publish→ack.
    func endToEnd() async throws -> BenchResult {
        let backend = try await makeBackend()
        let key = try key
        let messages = messages
        let start = ContinuousClock.now
        let consumer = Task {
            var latencies = [Int64](repeating: 0, count: messages)
            var received = 0
            for try await message in backend.consume(keys: [key], group: nil) {
                try await message.ack()
                latencies[received] = BenchPayload.age(of: message.payload)
                received += 1
                if received == messages { break }
            }
            return latencies
        }
        for sequence in 0..<messages {
            try await backend.publish(BenchPayload.make(sequence: sequence), to: key)
        }
        var latencies = try await consumer.value
        let seconds = (ContinuousClock.now - start).seconds
        await backend.close()
        return result("end-to-end", seconds: seconds, latencies: &latencies)
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
