/// The name of a consumer group.
///
/// Each message of a key is delivered to one member of each group: members of one group compete
/// for messages, and every group sees every message. Passing `nil` where a group is expected joins
/// the provider's default group (`ABE_DEFAULT_GROUP`, default ``defaultName``).
///
/// A group name has 1 to ``maxByteCount`` UTF-8 bytes and no control characters.
public struct ConsumerGroup: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The longest group name, in UTF-8 bytes.
    public static let maxByteCount = 255
    /// The name of the default group when `ABE_DEFAULT_GROUP` is not set.
    public static let defaultName = "default"
    /// The environment variable that names the default group.
    public static let defaultGroupVariable = "ABE_DEFAULT_GROUP"

    /// The group name as given.
    public let name: String

    /// Creates a group name, or throws ``MessageQueueError/Code/invalidGroup`` naming the broken rule.
    public init(_ name: String) throws(MessageQueueError) {
        if let problem = NameValidation.problem(in: name, maxBytes: Self.maxByteCount) {
            throw MessageQueueError(.invalidGroup, "invalid consumer group \(NameValidation.quoted(name)): \(problem)")
        }
        self.name = name
    }

    /// The group named ``defaultName``.
    public static let defaultGroup = ConsumerGroup(unchecked: defaultName)

    private init(unchecked name: String) {
        self.name = name
    }

    /// The default group configured by `ABE_DEFAULT_GROUP` in `environment`, or ``defaultGroup``.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the variable when its value is
    /// not a valid group name.
    public static func configuredDefault(in environment: [String: String]) throws(MessageQueueError) -> ConsumerGroup {
        guard let value = environment[defaultGroupVariable] else { return defaultGroup }
        do {
            return try ConsumerGroup(value)
        } catch {
            throw MessageQueueError(.invalidConfiguration, "\(defaultGroupVariable): \(error.message)")
        }
    }

    public var description: String { name }

    public static func < (lhs: ConsumerGroup, rhs: ConsumerGroup) -> Bool { lhs.name < rhs.name }
}
