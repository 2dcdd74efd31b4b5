/// The one error type of Abstract Backend and its providers.
///
/// Match on ``code``, which is stable across releases; ``message`` is for people and says what to
/// fix. Neither ever contains a credential.
///
/// ```swift
/// do {
///     try await backend.publish(payload, to: key)
/// } catch let error as MessageQueueError where error.code == .closed {
///     // the backend was closed during shutdown
/// }
/// ```
public struct MessageQueueError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable classification of a ``MessageQueueError``.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Base: String, Sendable, Hashable {
            case invalidKey = "invalid-key"
            case invalidGroup = "invalid-group"
            case invalidPayload = "invalid-payload"
            case invalidConfiguration = "invalid-configuration"
            case unknownProvider = "unknown-provider"
            case noProvider = "no-provider"
            case closed
            case invalidState = "invalid-state"
            case unavailable
            case timeout
            case dataCorrupted = "data-corrupted"
            case internalError = "internal-error"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// A key broke a validation rule of ``MessageQueueKey``.
        public static let invalidKey = Code(.invalidKey)
        /// A group name broke a validation rule of ``ConsumerGroup``.
        public static let invalidGroup = Code(.invalidGroup)
        /// A payload is not a JSON object, contains a non-finite number, or could not be
        /// encoded or decoded.
        public static let invalidPayload = Code(.invalidPayload)
        /// An environment variable or option has a value the provider cannot use.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// `QUEUE_BACKEND` names a provider that is not linked into the program.
        public static let unknownProvider = Code(.unknownProvider)
        /// No provider was linked, or none could be selected.
        public static let noProvider = Code(.noProvider)
        /// The backend was closed; no further calls are accepted.
        public static let closed = Code(.closed)
        /// An object was used in a way its state does not allow, such as running a
        /// ``MessageConsumer`` a second time.
        public static let invalidState = Code(.invalidState)
        /// The provider's server or storage cannot be reached right now; retrying may succeed.
        public static let unavailable = Code(.unavailable)
        /// An operation did not complete within its time bound.
        public static let timeout = Code(.timeout)
        /// Stored data failed an integrity check; the affected record was skipped.
        public static let dataCorrupted = Code(.dataCorrupted)
        /// A provider broke one of its own invariants. Please report it.
        public static let internalError = Code(.internalError)

        /// The stable spelling of the code, for example `invalid-key`.
        public var description: String { base.rawValue }
    }

    /// What went wrong, as a stable code.
    public let code: Code
    /// What went wrong and what to do about it, for people.
    public let message: String

    /// Creates an error. Providers must not put credentials into `message`.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `"<code>: <message>"`.
    public var description: String { "\(code): \(message)" }

    /// The error thrown by every call on a backend after ``MessageQueueBackend/close()``.
    public static func closed(_ providerName: String) -> MessageQueueError {
        MessageQueueError(.closed, "the \(providerName) backend is closed; create a new one to publish or consume again")
    }
}
