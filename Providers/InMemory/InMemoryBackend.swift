import AbstractBackend
import Logging

/// The whole Abstract Backend model in process memory: for development, tests and single-process
/// pipelines. Messages are lost when the process ends.
///
/// Per key it keeps a bounded log (`publish` suspends while a key holds
/// ``Configuration/capacity`` messages), consumer groups with pending deliveries, visibility-timeout
/// redelivery and dead letters, all behind one lock per key.
///
/// ```swift
/// let backend = InMemoryBackend()
/// try await backend.publish(["order": 42], to: MessageQueueKey("orders"))
/// for try await message in backend.consume(group: nil) {
///     print(message.payload)
///     try await message.ack()
/// }
/// ```
public struct InMemoryBackend: MessageQueueBackend {
    /// `memory`.
    public static let providerName = "memory"

    /// The descriptor to pass to `loadBackend(providers:)`. It is the development fallback: chosen
    /// when no other provider is configured, with a warning.
    public static let provider = MessageQueueProvider(
        InMemoryBackend.self,
        aliases: ["in-memory", "inmemory"],
        product: "AbstractBackendInMemory",
        summary: "in-process queues for development and tests; messages are lost when the process ends",
        environmentVariables: Variable.documented,
        configuringVariables: [],
        isDevelopmentFallback: true
    )

    /// The options this backend runs with.
    public let configuration: Configuration
    let registry: KeyRegistry

    /// Creates an empty backend.
    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "abe.memory")) {
        self.configuration = configuration
        self.registry = KeyRegistry(configuration: configuration, logger: logger)
    }

    /// Creates a backend configured by the `ABE_MEMORY_*` variables and `ABE_DEFAULT_GROUP`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> InMemoryBackend {
        InMemoryBackend(configuration: try Configuration(environment: environment))
    }

    nonisolated(nonsending) public func publish(_ payload: MessageQueuePayload, to key: MessageQueueKey) async throws {
        try payload.validate()
        let log = try registry.log(for: key)
        let started = log.publishing.start()
        try await log.append(CollectionOfOne(payload))
        log.publishing.published(startedAt: started)
    }

    /// Publishes the batch, taking each key's lock once per run of consecutive messages to it.
    /// The whole batch is validated before anything is published.
    nonisolated(nonsending) public func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        for item in batch { try item.payload.validate() }
        var start = batch.startIndex
        while start < batch.endIndex {
            let key = batch[start].key
            let end = batch[start...].firstIndex { $0.key != key } ?? batch.endIndex
            let log = try registry.log(for: key)
            let started = log.publishing.start()
            try await log.append(batch[start..<end].lazy.map(\.payload))
            log.publishing.published(end - start, startedAt: started)
            start = end
        }
    }

    public func consume(group: ConsumerGroup?) -> Messages {
        Messages(registry: registry, group: group ?? configuration.defaultGroup, keys: nil)
    }

    public func consume(keys: [MessageQueueKey], group: ConsumerGroup?) -> Messages {
        Messages(registry: registry, group: group ?? configuration.defaultGroup, keys: keys)
    }

    /// Drops every message, fails suspended publishers and ends every consumer with
    /// ``MessageQueueError/Code/closed``.
    nonisolated(nonsending) public func close() async {
        registry.close()
    }
}
