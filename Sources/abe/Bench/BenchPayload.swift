import AbstractBackend

/// The payload every scenario and the baseline publish: about 100 bytes of JSON carrying a sequence
/// number and the publish time, so the consumer can measure publish→ack latency.
enum BenchPayload {
    static let body = JSONValue.string(String(repeating: "x", count: 64))
    private static let origin = ContinuousClock.now

    /// Nanoseconds since the start of the process, on the continuous clock.
    static func now() -> Int64 {
        let elapsed = ContinuousClock.now - origin
        return elapsed.components.seconds * 1_000_000_000 + elapsed.components.attoseconds / 1_000_000_000
    }

    static func make(sequence: Int) -> MessageQueuePayload {
        ["seq": .int(Int64(sequence)), "t": .int(now()), "body": body]
    }

    /// Nanoseconds since `payload` was made.
    static func age(of payload: MessageQueuePayload) -> Int64 {
        guard case .int(let sent)? = payload["t"] else { return 0 }
        return now() - sent
    }

    static var byteCount: Int {
        (try? make(sequence: 1_000_000).jsonBytes().count) ?? 0
    }
}
