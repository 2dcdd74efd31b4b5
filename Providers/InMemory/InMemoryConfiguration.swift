import AbstractBackend

extension InMemoryBackend {
    /// Options of the in-memory provider. Every field has a default.
    public struct Configuration: Sendable, Hashable {
        /// Messages kept per key before `publish` suspends until consumers acknowledge some.
        /// `ABE_MEMORY_CAPACITY`, default 65 536.
        public var capacity: Int = 65_536
        /// How long a delivered message may stay unacknowledged before it is delivered again.
        /// `ABE_MEMORY_VISIBILITY_TIMEOUT`, default 30 s.
        public var visibilityTimeout: Duration = .seconds(30)
        /// Deliveries after which a failing message moves to the dead-letter key.
        /// `ABE_MEMORY_MAX_DELIVERIES`, default 5.
        public var maxDeliveries: Int = 5
        /// Messages a consumer takes from a key at once; they count as delivered from then on.
        /// `ABE_MEMORY_PREFETCH`, default 64.
        public var prefetch: Int = 64
        /// The group `consume(group: nil)` joins. `ABE_DEFAULT_GROUP`, default `default`.
        public var defaultGroup: ConsumerGroup = .defaultGroup

        /// Creates a configuration with the defaults.
        public init() {}

        /// Reads the configuration from `ABE_MEMORY_*` variables and `ABE_DEFAULT_GROUP`.
        ///
        /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad variable.
        public init(environment: [String: String]) throws(MessageQueueError) {
            let reader = EnvironmentReader(environment)
            capacity = try reader.integer(Variable.capacity, default: capacity, in: 1...(1 << 30))
            visibilityTimeout = try reader.duration(
                Variable.visibilityTimeout, default: visibilityTimeout, in: .milliseconds(1) ... .seconds(86_400 * 7)
            )
            maxDeliveries = try reader.integer(Variable.maxDeliveries, default: maxDeliveries, in: 1...1_000_000)
            prefetch = try reader.integer(Variable.prefetch, default: prefetch, in: 1...65_536)
            defaultGroup = try ConsumerGroup.configuredDefault(in: environment)
        }
    }

    /// The environment variables of the in-memory provider.
    public enum Variable {
        /// Messages kept per key before `publish` suspends.
        public static let capacity = "ABE_MEMORY_CAPACITY"
        /// Time before an unacknowledged delivery is delivered again.
        public static let visibilityTimeout = "ABE_MEMORY_VISIBILITY_TIMEOUT"
        /// Deliveries before a message moves to the dead-letter key.
        public static let maxDeliveries = "ABE_MEMORY_MAX_DELIVERIES"
        /// Messages a consumer takes from a key at once.
        public static let prefetch = "ABE_MEMORY_PREFETCH"

        static let documented: [EnvironmentVariable] = [
            EnvironmentVariable(capacity, "messages kept per key before publish suspends (1 to 2^30, default 65536)"),
            EnvironmentVariable(visibilityTimeout, "time before an unacknowledged delivery is redelivered, e.g. 30s or 500ms (default 30s)"),
            EnvironmentVariable(maxDeliveries, "deliveries before a message moves to <key>:dead-letter (default 5)"),
            EnvironmentVariable(prefetch, "messages a consumer takes from a key at once (1 to 65536, default 64)"),
            EnvironmentVariable(ConsumerGroup.defaultGroupVariable, "the group consume(group: nil) joins (default \"default\")"),
        ]
    }
}
