import AbstractBackend

/// The messages of one or more keys for one consumer group, read from Redis Streams.
///
/// Each iterator made from it is one member of the group, with a Redis connection and a consumer
/// name of its own (`<host>-<pid>-<n>`, stable for the life of the iterator). Iteration ends with
/// `CancellationError` when its task is cancelled — at once, even while waiting in
/// `XREADGROUP … BLOCK` — and with ``MessageQueueError/Code/closed`` after the backend is closed.
/// While the server is unreachable the iterator logs a warning and keeps retrying with backoff;
/// it resumes on its own when the server is back.
public struct RedisConsumer: AsyncSequence, Sendable {
    public typealias Element = MessageQueueMessage
    public typealias Failure = any Error

    let backend: RedisBackend
    let keys: [MessageQueueKey]?
    let group: ConsumerGroup

    public func makeAsyncIterator() -> Iterator {
        Iterator(session: ConsumerSession(backend: backend, keys: keys, group: group))
    }

    /// One member of the group. Not shareable between tasks; make one iterator per consumer.
    public struct Iterator: AsyncIteratorProtocol {
        let session: ConsumerSession

        /// The next message, waiting for one when none is ready.
        public mutating func next() async throws -> MessageQueueMessage? {
            // Most calls are served from the fetched batch, without an async call into the session.
            if let message = session.nextBuffered() { return message }
            return try await session.next()
        }
    }
}
