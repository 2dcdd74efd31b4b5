import AbstractBackend

extension TemplateBackend {
    /// The messages of one or more keys, for one group. Each iterator is one member of the group.
    public struct Messages: AsyncSequence, Sendable {
        /// A delivered message; acknowledge it with `ack()` or give it back with `nack()`.
        public typealias Element = MessageQueueMessage
        /// `CancellationError`, or a ``MessageQueueError`` such as `closed`.
        public typealias Failure = any Error

        let log: TemplateLog
        let group: ConsumerGroup
        /// `nil` reads every key except dead-letter keys, including keys created later.
        let keys: [MessageQueueKey]?

        /// Joins the group as a new member.
        public func makeAsyncIterator() -> Iterator {
            Iterator(log: log, group: group, keys: keys)
        }

        /// Delivers one message at a time, taking it from the log only when asked, so a member
        /// never holds messages it has not handed out.
        ///
        /// Throws `CancellationError` when its task is cancelled and ``MessageQueueError/Code/closed``
        /// when the backend is closed; after throwing it returns `nil`.
        public struct Iterator: AsyncIteratorProtocol {
            let log: TemplateLog
            let group: ConsumerGroup
            let keys: [MessageQueueKey]?
            private var hasEnded = false

            init(log: TemplateLog, group: ConsumerGroup, keys: [MessageQueueKey]?) {
                self.log = log
                self.group = group
                self.keys = keys
            }

            /// The next message, waiting until one is available.
            public mutating func next() async throws -> MessageQueueMessage? {
                guard !hasEnded else { return nil }
                do {
                    return try await log.nextMessage(keys: keys, group: group)
                } catch {
                    hasEnded = true
                    throw error
                }
            }
        }
    }
}
