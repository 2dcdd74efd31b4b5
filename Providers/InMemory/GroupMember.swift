import AbstractBackend

/// One consumer's view of one key: the group it reads as, and the acknowledger of its messages.
///
/// Messages point here rather than at the `KeyLog`, so their reference counting stays on the
/// consuming thread's cache lines instead of the publisher's.
final class GroupMember: MessageAcknowledger {
    let log: KeyLog
    let group: ConsumerGroup
    let index: Int
    let metrics: MessageQueueMetrics.Delivery

    init(log: KeyLog, group: ConsumerGroup, index: Int) {
        self.log = log
        self.group = group
        self.index = index
        self.metrics = log.deliveryMetrics(group: index)
    }

    func message(for delivery: consuming KeyLog.Delivery) -> MessageQueueMessage {
        metrics.delivered(deliveryCount: delivery.deliveries)
        return MessageQueueMessage(
            key: log.key,
            group: group,
            payload: delivery.entry.payload,
            id: Self.decimal(delivery.sequence),
            publishedAt: delivery.entry.publishedAt,
            deliveryCount: delivery.deliveries,
            receipt: DeliveryReceipt(primary: delivery.sequence, secondary: UInt64(delivery.deliveries)),
            acknowledger: self
        )
    }

    nonisolated(nonsending) func acknowledge(_ message: MessageQueueMessage) async throws {
        try log.acknowledge(group: index, sequence: message.receipt.primary)
        metrics.acknowledged()
    }

    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        try log.reject(
            group: index, sequence: message.receipt.primary, deliveries: Int(message.receipt.secondary),
            retryAfter: retryAfter, reason: reason
        )
        metrics.rejected()
    }

    /// `String(sequence)`, without the generic integer-formatting path, which showed in profiles.
    /// The exact capacity matters: up to 15 bytes the string is stored inline, without allocating.
    static func decimal(_ value: UInt64) -> String {
        var digits = 1
        var rest = value / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return String(unsafeUninitializedCapacity: digits) { buffer in
            var rest = value
            for index in stride(from: digits - 1, through: 0, by: -1) {
                buffer[index] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            return digits
        }
    }
}
