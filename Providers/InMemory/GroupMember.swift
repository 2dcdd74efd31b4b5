import AbstractBackend

/// One consumer's view of one key: the group it reads as, and the acknowledger of its messages.
///
/// Messages point here rather than at the `KeyLog`, so their reference counting stays on the
/// consuming thread's cache lines instead of the publisher's.
final class GroupMember: MessageAcknowledger {
    let log: KeyLog
    let group: ConsumerGroup
    let index: Int

    init(log: KeyLog, group: ConsumerGroup, index: Int) {
        self.log = log
        self.group = group
        self.index = index
    }

    func message(for delivery: KeyLog.Delivery) -> MessageQueueMessage {
        MessageQueueMessage(
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
    }

    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        try log.reject(
            group: index, sequence: message.receipt.primary, deliveries: Int(message.receipt.secondary),
            retryAfter: retryAfter, reason: reason
        )
    }

    /// `String(sequence)`, without the generic integer-formatting path, which showed in profiles.
    static func decimal(_ value: UInt64) -> String {
        String(unsafeUninitializedCapacity: 20) { buffer in
            var digits = 0
            var rest = value
            repeat {
                buffer[digits] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                digits += 1
            } while rest > 0
            var low = 0
            var high = digits - 1
            while low < high {
                buffer.swapAt(low, high)
                low += 1
                high -= 1
            }
            return digits
        }
    }
}
