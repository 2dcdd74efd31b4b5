/// One behaviour of the Abstract Backend model that every provider must show.
///
/// Each case has a matching `check…` method on ``MessageQueueContractTests`` (case
/// `fifoPerKey` ↔ `checkFifoPerKey()`), and each provider's runner declares a `test…` method
/// calling it (`testFifoPerKey()`), because XCTest on Linux does not run inherited test methods.
/// A provider that lacks a capability lists the case in
/// ``MessageQueueContractTests/unsupportedCases`` with the reason, and the case is skipped.
public enum ContractCase: String, CaseIterable, Sendable {
    /// Messages published before any consumer exists are delivered to `consume(group: nil)`.
    case publishBeforeConsume
    /// `consume(group:)` reads every key, including a key created while it runs.
    case severalKeys
    /// A named group receives everything published.
    case groupDelivery
    /// One key delivers in publish order.
    case fifoPerKey
    /// A payload with every kind of JSON value comes back equal.
    case complexJSONRoundTrip
    /// The provider's descriptor builds a working backend from the environment, directly and
    /// through `loadBackend`.
    case fromEnvironment
    /// Two members of one group split the messages without duplicates.
    case competingConsumers
    /// Every group receives every message.
    case fanOutGroups
    /// An unacknowledged message is delivered again after the visibility timeout.
    case visibilityTimeoutRedelivers
    /// `nack` redelivers, immediately or after `retryAfter`.
    case nackRedelivers
    /// A message moves to `<key>:dead-letter` after `maxDeliveries`.
    case deadLetterAfterMaxDeliveries
    /// Cancelling a consumer ends its iteration promptly and loses nothing.
    case cancellationPrompt
    /// `publish(_ batch:)` delivers everything, in order per key.
    case batchPublish
    /// Concurrent publishers lose nothing.
    case concurrentPublishers
    /// A 1 MiB payload round-trips.
    case largePayload
    /// `consume(keys:group:)` reads only the listed keys.
    case explicitKeysFilter
    /// A group created after messages were published starts at the oldest retained one.
    case newGroupStartsAtOldestRetained
    /// `close()` ends consumers and makes later calls fail with `closed`.
    case closeReleases
    /// Invalid keys, groups and payloads are rejected with the right error code.
    case invalidInputRejected
    /// A ``MessageConsumer`` whose handler throws keeps consuming and retries the failed messages.
    case consumerSurvivesHandlerErrors
    /// A ``MessageConsumer`` with `concurrency: 1` handles one key's messages in publish order.
    case consumerKeepsOrderWithConcurrencyOne
    /// ``MessageConsumer`` shutdown finishes running handlers and leaves the rest for redelivery.
    case consumerGracefulShutdown
    /// A second ``MessageConsumer/run()`` is refused.
    case consumerSecondRunRefused
    /// A ``MessageConsumer``'s group reaches the provider: two groups each handle everything.
    case consumerGroupReachesProvider
    /// ``MessageConsumer`` retries follow the ``RetryPolicy`` and end in the dead-letter key.
    case consumerRetriesEndInDeadLetter
    /// A ``MessageConsumer`` never runs more than `concurrency` handlers at once.
    case consumerConcurrencyLimit

    /// The name of the check method, such as `checkFifoPerKey`.
    public var checkName: String { "check" + capitalizedName }

    /// The name a runner gives the test method, such as `testFifoPerKey`.
    public var testName: String { "test" + capitalizedName }

    private var capitalizedName: String { rawValue.prefix(1).uppercased() + rawValue.dropFirst() }
}
