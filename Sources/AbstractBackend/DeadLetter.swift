import struct Foundation.Date

/// A message that could not be processed, as stored in its key's dead-letter key.
///
/// Every provider writes the same envelope as the payload of the dead-letter message, so tools and
/// applications read dead letters the same way whatever the provider:
///
/// ```json
/// {"key": "orders", "group": "billing", "id": "17", "deliveryCount": 5,
///  "reason": "max-deliveries", "lastError": "timeout talking to the card service",
///  "publishedAt": 1764393600.25, "deadLetteredAt": 1764393660.5, "payload": {"order": 42}}
/// ```
///
/// Times are seconds since 1970 (UTC). Consume `<key>:dead-letter` with an explicit key list and
/// decode each message with ``init(from:)``.
public struct DeadLetter: Sendable, Hashable {
    /// Why the message was dead-lettered.
    public struct Reason: Sendable, Hashable, CustomStringConvertible {
        /// The stable spelling, such as `max-deliveries`.
        public let rawValue: String

        /// Creates a reason from its spelling.
        public init(_ rawValue: String) { self.rawValue = rawValue }

        /// The message was delivered `maxDeliveries` times without being acknowledged.
        public static let maxDeliveries = Reason("max-deliveries")
        /// The stored entry is not a valid payload (for example a Redis entry without a JSON
        /// `data` field); ``DeadLetter/lastError`` says what is wrong with it.
        public static let invalidPayload = Reason("invalid-payload")

        public var description: String { rawValue }
    }

    /// The key the message was published to.
    public var key: MessageQueueKey
    /// The group that failed to process it.
    public var group: ConsumerGroup
    /// The message's id in its original key.
    public var id: String
    /// How many times it was delivered before it was dead-lettered.
    public var deliveryCount: Int
    /// Why it was dead-lettered.
    public var reason: Reason
    /// The last failure reported with ``MessageQueueMessage/nack(retryAfter:reason:)``, if any.
    public var lastError: String?
    /// When it was first published.
    public var publishedAt: Date
    /// When it was moved to the dead-letter key.
    public var deadLetteredAt: Date
    /// The original payload. For ``Reason/invalidPayload`` this is `{"raw": <the stored text>}`.
    public var payload: MessageQueuePayload

    /// Creates a dead letter.
    public init(
        key: MessageQueueKey,
        group: ConsumerGroup,
        id: String,
        deliveryCount: Int,
        reason: Reason,
        lastError: String? = nil,
        publishedAt: Date,
        deadLetteredAt: Date = Date(),
        payload: MessageQueuePayload
    ) {
        self.key = key
        self.group = group
        self.id = id
        self.deliveryCount = deliveryCount
        self.reason = reason
        self.lastError = lastError
        self.publishedAt = publishedAt
        self.deadLetteredAt = deadLetteredAt
        self.payload = payload
    }

    /// The envelope to publish to ``MessageQueueKey/deadLetterKey``.
    public var envelope: MessageQueuePayload {
        var fields: [String: JSONValue] = [
            "key": .string(key.rawValue),
            "group": .string(group.name),
            "id": .string(id),
            "deliveryCount": .int(Int64(deliveryCount)),
            "reason": .string(reason.rawValue),
            "publishedAt": .double(publishedAt.timeIntervalSince1970),
            "deadLetteredAt": .double(deadLetteredAt.timeIntervalSince1970),
            "payload": payload.jsonValue,
        ]
        if let lastError { fields["lastError"] = .string(lastError) }
        return MessageQueuePayload(fields)
    }

    /// Reads a dead letter from the payload of a message of a dead-letter key.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` naming the missing or mistyped member.
    public init(from envelope: MessageQueuePayload) throws(MessageQueueError) {
        func member(_ name: String) throws(MessageQueueError) -> JSONValue {
            guard let value = envelope[name] else {
                throw MessageQueueError(.invalidPayload, "not a dead letter: the member \"\(name)\" is missing")
            }
            return value
        }
        func text(_ name: String) throws(MessageQueueError) -> String {
            guard let value = try member(name).stringValue else {
                throw MessageQueueError(.invalidPayload, "not a dead letter: the member \"\(name)\" is not a string")
            }
            return value
        }
        func time(_ name: String) throws(MessageQueueError) -> Date {
            guard let value = try member(name).doubleValue else {
                throw MessageQueueError(.invalidPayload, "not a dead letter: the member \"\(name)\" is not a number")
            }
            return Date(timeIntervalSince1970: value)
        }
        guard let count = try member("deliveryCount").intValue else {
            throw MessageQueueError(.invalidPayload, "not a dead letter: the member \"deliveryCount\" is not an integer")
        }
        guard let original = try member("payload").objectValue else {
            throw MessageQueueError(.invalidPayload, "not a dead letter: the member \"payload\" is not an object")
        }
        self.init(
            key: try MessageQueueKey(try text("key")),
            group: try ConsumerGroup(try text("group")),
            id: try text("id"),
            deliveryCount: Int(count),
            reason: Reason(try text("reason")),
            lastError: envelope["lastError"]?.stringValue,
            publishedAt: try time("publishedAt"),
            deadLetteredAt: try time("deadLetteredAt"),
            payload: MessageQueuePayload(original)
        )
    }
}
