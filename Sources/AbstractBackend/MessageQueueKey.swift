/// The name of one ordered log of messages: a Redis stream, a spool directory, an in-memory log.
///
/// A key is validated when it is created, so an invalid key never reaches a provider:
/// it has 1 to ``maxByteCount`` UTF-8 bytes and no control characters (no NUL, tab, newline,
/// U+007F–U+009F). Any other Unicode is allowed.
///
/// ```swift
/// let orders = try MessageQueueKey("orders")
/// ```
public struct MessageQueueKey: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The longest key, in UTF-8 bytes.
    public static let maxByteCount = 512
    /// The suffix of the key that receives a key's dead letters: `orders` → `orders:dead-letter`.
    public static let deadLetterSuffix = ":dead-letter"

    /// The key as given.
    public let rawValue: String

    /// Creates a key, or throws ``MessageQueueError/Code/invalidKey`` naming the broken rule.
    public init(_ rawValue: String) throws(MessageQueueError) {
        if let problem = NameValidation.problem(in: rawValue, maxBytes: Self.maxByteCount) {
            throw MessageQueueError(.invalidKey, "invalid key \(NameValidation.quoted(rawValue)): \(problem)")
        }
        self.rawValue = rawValue
    }

    /// Whether this key is the dead-letter key of another key.
    ///
    /// Consumers that read every key (``MessageQueueBackend/consume(group:)``) skip dead-letter keys;
    /// name them in an explicit key list to read them.
    public var isDeadLetter: Bool { rawValue.hasSuffix(Self.deadLetterSuffix) }

    /// The key that receives this key's dead letters (`<key>:dead-letter`).
    ///
    /// Throws when the result would exceed ``maxByteCount``.
    public func deadLetterKey() throws(MessageQueueError) -> MessageQueueKey {
        try MessageQueueKey(rawValue + Self.deadLetterSuffix)
    }

    public var description: String { rawValue }

    public static func < (lhs: MessageQueueKey, rhs: MessageQueueKey) -> Bool { lhs.rawValue < rhs.rawValue }
}
