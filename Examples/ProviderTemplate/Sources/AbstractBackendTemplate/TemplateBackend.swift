import AbstractBackend
import Logging

/// An Abstract Backend provider that keeps its logs in one actor.
///
/// It implements the whole model — an ordered log per key, consumer groups, pending deliveries,
/// redelivery after the visibility timeout, `nack`, dead letters in `<key>:dead-letter`,
/// explicit key lists and `close()` — in the plainest way: every operation is a method of
/// `TemplateLog`, so no two of them ever overlap. It favours clarity over speed and keeps
/// messages in process memory: they are lost when the process ends.
///
/// ```swift
/// let backend = try TemplateBackend.fromEnvironment()
/// try await backend.publish(["order": 42], to: MessageQueueKey("orders"))
/// for try await message in backend.consume(group: nil) {
///     print(message.payload)
///     try await message.ack()
/// }
/// ```
public struct TemplateBackend: MessageQueueBackend {
    /// `template`: the name `QUEUE_BACKEND` selects this provider by.
    public static let providerName = "template"

    /// The descriptor to pass to `loadBackend(providers:)`.
    ///
    /// The provider counts as configured when any of its own variables is set; see
    /// ``Variable`` for the list.
    public static let provider = MessageQueueProvider(
        TemplateBackend.self,
        product: "AbstractBackendTemplate",
        summary: "an actor-backed log in process memory; messages are lost when the process ends",
        environmentVariables: Variable.documented,
        configuringVariables: Variable.configuring
    )

    /// The options this backend runs with.
    public let configuration: Configuration
    private let log: TemplateLog

    /// Creates an empty backend.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the option when
    /// `configuration` holds a value out of range.
    public init(configuration: Configuration = Configuration(), logger: Logger = Logger(label: "abe.template")) throws(MessageQueueError) {
        try configuration.validate()
        self.configuration = configuration
        self.log = TemplateLog(configuration: configuration, logger: logger)
    }

    /// Creates a backend configured by the `ABE_TEMPLATE_*` variables and `ABE_DEFAULT_GROUP`.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad variable.
    public static func fromEnvironment(_ environment: [String: String]) throws -> TemplateBackend {
        try TemplateBackend(configuration: Configuration(environment: environment))
    }

    /// Appends `payload` to the log of `key`.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` when JSON cannot represent the payload,
    /// and ``MessageQueueError/Code/closed`` after ``close()``.
    nonisolated(nonsending) public func publish(_ payload: MessageQueuePayload, to key: MessageQueueKey) async throws {
        try payload.validate()
        let publishing = log.metrics.publishing(to: key)
        let started = publishing.start()
        try await log.append([(key, payload)])
        publishing.published(startedAt: started)
    }

    /// Publishes the whole batch at once, or nothing: every payload is validated first, and one
    /// call to the actor appends them all.
    nonisolated(nonsending) public func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        for item in batch { try item.payload.validate() }
        let started = ContinuousClock.now
        try await log.append(batch)
        for item in batch { log.metrics.publishing(to: item.key).published(startedAt: started) }
    }

    /// Consumes every key except dead-letter keys, as a member of `group` or of the default group.
    public func consume(group: ConsumerGroup?) -> Messages {
        Messages(log: log, group: group ?? configuration.defaultGroup, keys: nil)
    }

    /// Consumes only `keys`, as a member of `group` or of the default group.
    public func consume(keys: [MessageQueueKey], group: ConsumerGroup?) -> Messages {
        Messages(log: log, group: group ?? configuration.defaultGroup, keys: keys)
    }

    /// Drops every message, ends every consumer with ``MessageQueueError/Code/closed`` and makes
    /// later calls fail with it. Calling it twice is harmless.
    nonisolated(nonsending) public func close() async {
        await log.close()
    }
}
