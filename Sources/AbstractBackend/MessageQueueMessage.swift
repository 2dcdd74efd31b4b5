import struct Foundation.Date

/// A message delivered to a consumer.
///
/// A delivered message stays pending in its group until ``ack()``. If it is not acknowledged within
/// the provider's visibility timeout, or its consumer goes away, or it is ``nack(retryAfter:reason:)``-ed,
/// it is delivered again with ``deliveryCount`` one higher. After the provider's `maxDeliveries`
/// it moves to the key's dead-letter key instead.
public struct MessageQueueMessage: Sendable {
    /// The key the message was published to.
    public let key: MessageQueueKey
    /// The group this delivery belongs to.
    public let group: ConsumerGroup
    /// The message body.
    public let payload: MessageQueuePayload
    /// The provider's identifier of the message, unique and ordered within its key.
    ///
    /// Its format belongs to the provider: `"17"` in memory, `"1700000000000-0"` on Redis.
    public let id: String
    /// When the message was published, by the publisher's or server's clock.
    public let publishedAt: Date
    /// How many times the message has been delivered in this group, `1` on first delivery.
    public let deliveryCount: Int
    /// What the provider needs to find this delivery again in ``ack()`` and ``nack(retryAfter:reason:)``.
    public let receipt: DeliveryReceipt
    @usableFromInline let acknowledger: any MessageAcknowledger

    /// Creates a message. Called by providers.
    public init(
        key: MessageQueueKey,
        group: ConsumerGroup,
        payload: MessageQueuePayload,
        id: String,
        publishedAt: Date,
        deliveryCount: Int,
        receipt: DeliveryReceipt,
        acknowledger: any MessageAcknowledger
    ) {
        self.key = key
        self.group = group
        self.payload = payload
        self.id = id
        self.publishedAt = publishedAt
        self.deliveryCount = deliveryCount
        self.receipt = receipt
        self.acknowledger = acknowledger
    }

    /// Marks the message as processed by its group; it will not be delivered to the group again.
    ///
    /// Acknowledging a message that is no longer pending (already acknowledged, or moved to the
    /// dead-letter key) does nothing. Throws ``MessageQueueError/Code/closed`` after the backend was
    /// closed, and provider errors when the acknowledgement could not be recorded.
    @inlinable
    nonisolated(nonsending) public func ack() async throws {
        try await acknowledger.acknowledge(self)
    }

    /// Gives the message back to its group for redelivery, not before `retryAfter` has passed.
    ///
    /// The redelivery has ``deliveryCount`` one higher and may go to any member of the group. When
    /// this delivery was the provider's last allowed one, the message moves to the dead-letter key.
    /// Does nothing when this delivery is no longer the current one (it timed out and was
    /// delivered again).
    ///
    /// - Parameters:
    ///   - retryAfter: The earliest time from now at which the message is delivered again.
    ///   - reason: Why processing failed; kept with the message and written into the dead letter
    ///     if this was the last delivery.
    @inlinable
    nonisolated(nonsending) public func nack(retryAfter: Duration = .zero, reason: String? = nil) async throws {
        try await acknowledger.reject(self, retryAfter: retryAfter, reason: reason)
    }
}

/// Provider data that identifies one delivery of a message.
///
/// Opaque to applications. Providers store whatever two numbers let them find the delivery again
/// cheaply, for example a sequence number and a group index.
public struct DeliveryReceipt: Sendable, Hashable {
    /// The first provider-defined number.
    public var primary: UInt64
    /// The second provider-defined number.
    public var secondary: UInt64

    /// Creates a receipt.
    public init(primary: UInt64, secondary: UInt64 = 0) {
        self.primary = primary
        self.secondary = secondary
    }
}

/// Records the outcome of a delivery. Implemented by providers.
///
/// A class: every message holds one, and a class reference is cheaper to carry than an
/// existential box. Both requirements run on the caller's executor (`nonisolated(nonsending)`), so
/// acknowledging from an actor does not hop off it; implementations that block must move that
/// work elsewhere.
public protocol MessageAcknowledger: AnyObject, Sendable {
    /// Acknowledges `message` in its group. See ``MessageQueueMessage/ack()``.
    nonisolated(nonsending) func acknowledge(_ message: MessageQueueMessage) async throws
    /// Returns `message` to its group for redelivery. See ``MessageQueueMessage/nack(retryAfter:reason:)``.
    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws
}
