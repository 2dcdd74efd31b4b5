import class Foundation.ProcessInfo

/// A message-queue provider: publish JSON payloads to keys, consume them as an `AsyncSequence`.
///
/// Every provider implements the same model — ordered logs per key, consumer groups,
/// at-least-once delivery with a visibility timeout, dead letters — so application code does not
/// change when the provider does. Providers prove it by passing `AbstractBackendContractTests`.
///
/// ```swift
/// let backend = try loadBackend(providers: [InMemoryBackend.provider])
/// try await backend.publish(["order": 42], to: MessageQueueKey("orders"))
/// for try await message in backend.consume(group: nil) {
///     try await handle(message.payload)
///     try await message.ack()
/// }
/// ```
///
/// `publish` and `close` run on the caller's executor (`nonisolated(nonsending)`): calling them
/// from an actor does not hop off it. Implementations must never block there; blocking work
/// (sockets, disk) belongs on threads the provider owns.
public protocol MessageQueueBackend: Sendable {
    /// The sequence returned by ``consume(group:)``. Each iterator made from it is one member of
    /// the group; iteration throws `CancellationError` when its task is cancelled.
    associatedtype Messages: AsyncSequence<MessageQueueMessage, any Error> & Sendable

    /// The name `QUEUE_BACKEND` uses for this provider, such as `"memory"` or `"redis"`.
    static var providerName: String { get }

    /// Creates a backend from environment variables, throwing an error that names the first
    /// variable whose value is unusable.
    static func fromEnvironment(_ environment: [String: String]) throws -> Self

    /// Appends `payload` to the log of `key`.
    ///
    /// Returns once the provider has accepted the message under its durability guarantee.
    nonisolated(nonsending) func publish(_ payload: MessageQueuePayload, to key: MessageQueueKey) async throws

    /// Publishes several messages; per key they are appended in array order.
    ///
    /// Providers make this cheaper than one call per message where they can. On error, a prefix
    /// of the batch may have been published.
    nonisolated(nonsending) func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws

    /// Consumes every key (except dead-letter keys) as a member of `group`, or of the provider's
    /// default group when `group` is `nil`. Keys created while consuming are picked up within a second.
    func consume(group: ConsumerGroup?) -> Messages

    /// Consumes only `keys`, as a member of `group` or of the default group.
    func consume(keys: [MessageQueueKey], group: ConsumerGroup?) -> Messages

    /// Releases connections, files and threads. Later calls throw ``MessageQueueError/Code/closed``;
    /// iterating consumers end with that error. Calling it twice is harmless.
    nonisolated(nonsending) func close() async
}

extension MessageQueueBackend {
    /// Creates a backend from the process environment.
    public static func fromEnvironment() throws -> Self {
        try fromEnvironment(ProcessInfo.processInfo.environment)
    }

    /// Publishes each message of the batch in order, one call at a time.
    ///
    /// Providers that can write a batch more cheaply replace this.
    nonisolated(nonsending) public func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        for item in batch {
            try await publish(item.payload, to: item.key)
        }
    }
}
