/// A backend that can report what its keys hold, for operators and tools such as `abe stats`.
///
/// A separate protocol rather than a requirement of ``MessageQueueBackend``, so providers outside
/// this package keep compiling; tools ask for it with `backend as? any MessageQueueInspecting`.
/// Every provider of this package conforms.
///
/// ```swift
/// if let inspecting = backend as? any MessageQueueInspecting {
///     for key in try await inspecting.statistics(keys: nil) {
///         print(key.key, key.length, key.groups.map(\.pending))
///     }
/// }
/// ```
///
/// The figures are a snapshot taken while other processes may publish and consume, so they are
/// only consistent per key and group, not across them.
public protocol MessageQueueInspecting: Sendable {
    /// Statistics of `keys`, or of every key the provider knows when `keys` is `nil`.
    ///
    /// With `nil`, dead-letter keys are not listed on their own: each key reports the length of
    /// its dead-letter key in ``KeyStatistics/deadLetters``. Name a dead-letter key in `keys` to
    /// see its own groups. A named key that does not exist is reported with length 0 and no groups.
    /// Keys come back sorted. Inspecting never creates keys or groups.
    ///
    /// Throws ``MessageQueueError/Code/unavailable`` when the server or storage cannot be read,
    /// and ``MessageQueueError/Code/closed`` after ``MessageQueueBackend/close()``.
    nonisolated(nonsending) func statistics(keys: [MessageQueueKey]?) async throws -> [KeyStatistics]
}

/// What one key holds, as ``MessageQueueInspecting/statistics(keys:)`` reports it.
public struct KeyStatistics: Sendable, Hashable {
    /// The key.
    public var key: MessageQueueKey
    /// Messages the key's log holds now: published and not yet removed by retention. Messages
    /// every group acknowledged may still count until retention removes them.
    public var length: Int
    /// The key's consumer groups, sorted by name; empty until someone consumes the key.
    public var groups: [GroupStatistics]
    /// Messages in the key's dead-letter key (`<key>:dead-letter`).
    public var deadLetters: Int

    /// Creates the statistics of one key.
    public init(key: MessageQueueKey, length: Int, groups: [GroupStatistics], deadLetters: Int) {
        self.key = key
        self.length = length
        self.groups = groups
        self.deadLetters = deadLetters
    }
}

/// One consumer group's progress through one key.
public struct GroupStatistics: Sendable, Hashable {
    /// The group.
    public var group: ConsumerGroup
    /// Messages delivered to the group and not acknowledged yet: held by a consumer, or handed
    /// back with `nack` and waiting to be delivered again.
    public var pending: Int
    /// Messages of the key never delivered to the group yet, or `nil` when the provider cannot
    /// tell (Redis before 7.0, or after entries were deleted from the middle of a stream).
    public var undelivered: Int?
    /// How long ago the oldest pending message was published, or `nil` when nothing is pending.
    ///
    /// It grows while a message fails again and again, so it is the figure to alert on.
    public var oldestPendingAge: Duration?

    /// Creates the statistics of one group.
    public init(group: ConsumerGroup, pending: Int, undelivered: Int?, oldestPendingAge: Duration?) {
        self.group = group
        self.pending = pending
        self.undelivered = undelivered
        self.oldestPendingAge = oldestPendingAge
    }
}
