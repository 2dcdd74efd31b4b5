import AbstractBackend

/// The baseline of `abe bench`: the end-to-end scenario over a plain `AsyncStream`, one element per
/// message, with the same payload and the same consumer loop, in the same process and run.
enum AsyncStreamBaseline {
    static func endToEnd(messages: Int) async -> BenchResult {
        let (stream, continuation) = AsyncStream.makeStream(of: MessageQueuePayload.self)
        let start = ContinuousClock.now
        let consumer = Task {
            var latencies = [Int64](repeating: 0, count: messages)
            var received = 0
            for await element in stream {
                latencies[received] = BenchPayload.age(of: element)
                received += 1
                if received == messages { break }
            }
            return latencies
        }
        for sequence in 0..<messages {
            continuation.yield(BenchPayload.make(sequence: sequence))
        }
        continuation.finish()
        var latencies = await consumer.value
        let seconds = (ContinuousClock.now - start).seconds
        return BenchResult(
            backend: "asyncstream", scenario: "end-to-end", messages: messages, payloadBytes: BenchPayload.byteCount,
            seconds: seconds, latency: LatencySummary(nanoseconds: &latencies)
        )
    }
}
