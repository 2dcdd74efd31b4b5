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
            id: String(delivery.sequence),
            publishedAt: delivery.entry.publishedAt,
            deliveryCount: delivery.deliveries,
            receipt: DeliveryReceipt(primary: delivery.sequence, secondary: UInt64(delivery.deliveries)),
            acknowledger: self
        )
    }

    func acknowledge(_ message: MessageQueueMessage) async throws {
        try log.acknowledge(group: index, sequence: message.receipt.primary)
    }

    func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        try log.reject(
            group: index, sequence: message.receipt.primary, deliveries: Int(message.receipt.secondary),
            retryAfter: retryAfter, reason: reason
        )
    }
}
