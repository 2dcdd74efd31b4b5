/// The name of one ordered log of messages: a Redis stream, a spool directory, an in-memory log.
///
/// A key is validated when it is created, so an invalid key never reaches a provider:
/// it has 1 to ``maxByteCount`` UTF-8 bytes and no control characters (no NUL, tab, newline,
/// U+007F–U+009F). Any other Unicode is allowed. A dead-letter key (one ending in
/// ``deadLetterSuffix``) may be longer by the length of the suffix, so every key has one.
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
        let limit = Self.maxByteCount + (rawValue.hasSuffix(Self.deadLetterSuffix) ? Self.deadLetterSuffix.utf8.count : 0)
        if let problem = NameValidation.problem(in: rawValue, maxBytes: limit) {
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
    /// The dead-letter key of a dead-letter key is itself: a message that fails there stays there.
    public var deadLetterKey: MessageQueueKey {
        isDeadLetter ? self : MessageQueueKey(unchecked: rawValue + Self.deadLetterSuffix)
    }

    private init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: MessageQueueKey, rhs: MessageQueueKey) -> Bool { lhs.rawValue < rhs.rawValue }
}
