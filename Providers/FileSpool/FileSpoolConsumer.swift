import AbstractBackend

/// The messages of one or more keys of a file spool, for one consumer group.
///
/// Each iterator is one member of the group, in this or any other process sharing the spool. It
/// ends with `CancellationError` when its task is cancelled and with
/// ``MessageQueueError/Code/closed`` after the backend is closed; messages it fetched and did
/// not hand out are given back to the group at once.
public struct FileSpoolConsumer: AsyncSequence, Sendable {
    public typealias Element = MessageQueueMessage
    public typealias Failure = any Error

    let backend: FileSpoolBackend
    let keys: [MessageQueueKey]?
    let group: ConsumerGroup

    public func makeAsyncIterator() -> Iterator {
        Iterator(session: SpoolSession(backend: backend, keys: keys, group: group))
    }

    /// One member of the group. Not shareable between tasks; make one iterator per consumer.
    public struct Iterator: AsyncIteratorProtocol {
        let session: SpoolSession

        /// The next message, waiting for one when none is ready.
        public mutating func next() async throws -> MessageQueueMessage? {
            if let message = session.nextBuffered() { return message }
            return try await session.next()
        }
    }
}
