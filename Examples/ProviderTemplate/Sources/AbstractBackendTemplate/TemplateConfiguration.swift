import AbstractBackend

extension TemplateBackend {
    /// Options of the provider. Every field has a default.
    public struct Configuration: Sendable, Hashable {
        /// How long a delivered message may stay unacknowledged before it is delivered again.
        /// `ABE_TEMPLATE_VISIBILITY_TIMEOUT`, default 30 s, 1 ms to 7 days.
        public var visibilityTimeout: Duration
        /// Deliveries after which a failing message moves to the dead-letter key.
        /// `ABE_TEMPLATE_MAX_DELIVERIES`, default 5, 1 to 1 000 000.
        public var maxDeliveries: Int
        /// The group `consume(group: nil)` joins. `ABE_DEFAULT_GROUP`, default `default`.
        public var defaultGroup: ConsumerGroup

        /// Creates a configuration; arguments left out take their defaults.
        public init(
            visibilityTimeout: Duration = .seconds(30),
            maxDeliveries: Int = 5,
            defaultGroup: ConsumerGroup = .defaultGroup
        ) {
            self.visibilityTimeout = visibilityTimeout
            self.maxDeliveries = maxDeliveries
            self.defaultGroup = defaultGroup
        }

        /// Reads the configuration from the `ABE_TEMPLATE_*` variables and `ABE_DEFAULT_GROUP`.
        ///
        /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad variable,
        /// its value and the accepted range.
        public init(environment: [String: String]) throws(MessageQueueError) {
            let defaults = Configuration()
            let reader = EnvironmentReader(environment)
            self.init(
                visibilityTimeout: try reader.duration(
                    Variable.visibilityTimeout, default: defaults.visibilityTimeout, in: Self.visibilityTimeouts
                ),
                maxDeliveries: try reader.integer(Variable.maxDeliveries, default: defaults.maxDeliveries, in: Self.deliveryLimits),
                defaultGroup: try ConsumerGroup.configuredDefault(in: environment)
            )
        }

        /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first option out of
        /// range, for configurations built in code (the environment reader checks its own).
        public func validate() throws(MessageQueueError) {
            guard Self.visibilityTimeouts.contains(visibilityTimeout) else {
                throw MessageQueueError(.invalidConfiguration, "visibilityTimeout \(visibilityTimeout) is out of range; use 1 ms to 7 days")
            }
            guard Self.deliveryLimits.contains(maxDeliveries) else {
                throw MessageQueueError(.invalidConfiguration, "maxDeliveries \(maxDeliveries) is out of range; use 1 to 1000000")
            }
        }

        private static let visibilityTimeouts: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400 * 7)
        private static let deliveryLimits = 1...1_000_000
    }

    /// The environment variables of the provider.
    public enum Variable {
        /// Time before an unacknowledged delivery is delivered again, e.g. `30s` or `500ms`.
        public static let visibilityTimeout = "ABE_TEMPLATE_VISIBILITY_TIMEOUT"
        /// Deliveries before a message moves to `<key>:dead-letter`.
        public static let maxDeliveries = "ABE_TEMPLATE_MAX_DELIVERIES"

        /// What `loadBackend` and tools show for each variable the provider reads.
        static let documented: [EnvironmentVariable] = [
            EnvironmentVariable(visibilityTimeout, "time before an unacknowledged delivery is redelivered, e.g. 30s or 500ms (1ms to 7 days, default 30s)"),
            EnvironmentVariable(maxDeliveries, "deliveries before a message moves to <key>:dead-letter (1 to 1000000, default 5)"),
            EnvironmentVariable(ConsumerGroup.defaultGroupVariable, "the group consume(group: nil) joins (default \"default\")"),
        ]

        /// The variables whose presence selects this provider when `QUEUE_BACKEND` is unset.
        /// A provider for a server lists the one it cannot run without, such as its URL; this
        /// one needs none, so any of its own variables counts. `ABE_DEFAULT_GROUP` is shared by
        /// every provider and so selects none.
        static let configuring = [visibilityTimeout, maxDeliveries]
    }
}
