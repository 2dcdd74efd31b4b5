import AbstractBackend

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The messages every scenario and the baseline publish, and the clock they are timed with.
///
/// Payloads are built before the clock starts: building a three-member dictionary costs about as
/// much as the in-memory queue itself, and it is the application's cost, not the provider's. Each
/// payload is about 100 bytes of JSON: `{"seq":N,"body":"xxx…"}`. Publish times go to a side table
/// indexed by `seq`, written just before the publish call, so the consumer can compute
/// publish→ack latency; in end-to-end runs producers time and consumers sample only every
/// `sampleInterval`-th message, since reading the clock and the payload for every one would cost
/// more than the queue does.
///
/// `@unchecked Sendable`: slot `seq` of the side table is written once, by the publishing task,
/// before the message is published, and read only by a task that received the message, so the
/// queue's own synchronisation orders the two.
final class BenchMessages: @unchecked Sendable {
    let payloads: [MessageQueuePayload]
    private let sentAt: UnsafeMutableBufferPointer<Int64>

    init(count: Int) {
        let body = JSONValue.string(String(repeating: "x", count: 76))
        payloads = (0..<count).map { ["seq": .int(Int64($0)), "body": body] }
        sentAt = .allocate(capacity: count)
        sentAt.initialize(repeating: 0)
    }

    deinit {
        sentAt.deallocate()
    }

    var count: Int { payloads.count }

    /// Consumers record the latency of every this-many-th message they receive.
    static let sampleInterval = 16

    /// The JSON size of one payload.
    var payloadBytes: Int { (try? payloads.last?.jsonBytes().count) ?? 0 }

    /// Records that message `sequence` is being published now, and returns it.
    func send(_ sequence: Int) -> MessageQueuePayload {
        sentAt[sequence] = Self.now()
        return payloads[sequence]
    }

    /// Forgets every recorded send time, so a scenario that records only some (``sendSampled(_:)``)
    /// does not read the times an earlier scenario recorded for the others.
    func resetSendTimes() {
        sentAt.update(repeating: 0)
    }

    /// Like ``send(_:)``, but reads the clock only for the messages consumers sample (every
    /// `sampleInterval`-th, counted from 0): the producer of an end-to-end run would otherwise
    /// spend more on the clock than consumers do.
    func sendSampled(_ sequence: Int) -> MessageQueuePayload {
        if sequence % Self.sampleInterval == 0 { sentAt[sequence] = Self.now() }
        return payloads[sequence]
    }

    /// Whether a consumer samples the `received`-th message it gets (counted from 1). With one
    /// producer and FIFO delivery that is the message ``sendSampled(_:)`` timed.
    static func isSampled(received: Int) -> Bool {
        (received - 1) % sampleInterval == 0
    }

    /// Nanoseconds since `payload` was sent, or `nil` when its send time was not recorded.
    func age(of payload: MessageQueuePayload) -> Int64? {
        guard case .int(let sequence)? = payload["seq"], sequence >= 0, sequence < sentAt.count,
              sentAt[Int(sequence)] != 0
        else { return nil }
        return Self.now() - sentAt[Int(sequence)]
    }

    /// Nanoseconds since message `sequence` was sent with ``send(_:)``: for publishers, which know
    /// the sequence and need not look it up in the payload (a dictionary lookup the baselines do
    /// not pay).
    func age(ofSent sequence: Int) -> Int64 {
        Self.now() - sentAt[sequence]
    }

    /// Nanoseconds on the monotonic clock.
    static func now() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}
