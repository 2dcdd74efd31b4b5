import AbstractBackend

/// The baseline of `abe bench`: the end-to-end scenario over a plain `AsyncStream`, one element per
/// message, with the same payloads, the same consumer loop and the same clock, in the same run.
enum AsyncStreamBaseline {
    static func endToEnd(messages: BenchMessages) async -> BenchResult {
        let (stream, continuation) = AsyncStream.makeStream(of: MessageQueuePayload.self)
        let stopwatch = await BenchStopwatch.start()
        let consumer = Task {
            var latencies = [Int64]()
            latencies.reserveCapacity(messages.count / BenchMessages.sampleInterval + 1)
            var received = 0
            for await payload in stream {
                received += 1
                if BenchMessages.isSampled(received: received), let age = messages.age(of: payload) { latencies.append(age) }
                if received == messages.count { break }
            }
            return latencies
        }
        for sequence in 0..<messages.count {
            continuation.yield(messages.sendSampled(sequence))
        }
        continuation.finish()
        var latencies = await consumer.value
        let timing = await stopwatch.stop()
        return BenchResult(
            backend: "asyncstream", scenario: "end-to-end", messages: messages.count,
            payloadBytes: messages.payloadBytes, timing: timing, latency: LatencySummary(nanoseconds: &latencies)
        )
    }
}
