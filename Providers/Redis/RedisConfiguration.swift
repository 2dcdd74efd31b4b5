import AbstractBackend

/// Options of the Redis provider: where the server is, how to log in, and how the provider maps the
/// queue model onto Redis Streams.
///
/// A plain value with a default for every option. Build one in code:
///
/// ```swift
/// var configuration = RedisConfiguration(endpoint: .tcp(host: "redis.internal", port: 6379))
/// configuration.password = secrets.redisPassword
/// configuration.maxDeliveries = 10
/// try configuration.validate()
/// ```
///
/// or read it from the environment (`REDIS_URL` and the variables listed in ``variables``):
///
/// ```swift
/// let configuration = try RedisConfiguration(environment: ProcessInfo.processInfo.environment)
/// ```
///
/// The password never appears in ``description``, ``debugDescription``, ``customMirror``,
/// ``redactedURL`` or in any error this type throws; it is shown as `***`.
///
/// TLS (`rediss://`, `REDIS_SSL=true`) is not supported: it needs hiredis ≥ 1.0 built with TLS,
/// and Debian 12's libhiredis 0.14 has no TLS. Use a local TLS terminator such as stunnel, or a
/// plain `redis://` URL on a trusted network.
public struct RedisConfiguration: Sendable, Hashable {
    /// Where the Redis server accepts connections.
    public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
        /// A TCP host name or IP address and port. IPv6 addresses are given without brackets,
        /// for example `.tcp(host: "::1", port: 6379)`.
        case tcp(host: String, port: Int)
        /// The absolute path of a Unix domain socket, for example `/var/run/redis/redis.sock`.
        case unixSocket(path: String)

        /// `host:port` (`[address]:port` for IPv6) or `unix:<path>`.
        public var description: String {
            switch self {
            case let .tcp(host, port): return "\(RedisURL.bracketed(host)):\(port)"
            case let .unixSocket(path): return "unix:\(path)"
            }
        }
    }

    /// When entries are removed from a key's stream.
    public enum Retention: Sendable, Hashable, CustomStringConvertible {
        /// The default: an entry is trimmed (`XTRIM … MINID`) only once every consumer group of
        /// its key has acknowledged it. Nothing unread is ever dropped.
        case acknowledgedByAllGroups
        /// An explicit cap: besides trimming acknowledged entries, each stream is kept to about
        /// this many entries (`MAXLEN ~`). Entries over the cap are dropped even when some group
        /// has not read or acknowledged them yet; the backend logs a warning when it starts with a cap.
        case maxEntries(Int)

        /// `acknowledged by all groups` or `at most N entries per key`.
        public var description: String {
            switch self {
            case .acknowledgedByAllGroups: return "acknowledged by all groups"
            case let .maxEntries(count): return "at most \(count) entries per key"
            }
        }
    }

    // MARK: Defaults and limits

    /// The port used when `REDIS_URL` names none: 6379.
    public static let defaultPort = 6379
    /// The endpoint of a configuration that names none: `127.0.0.1:6379`.
    public static let defaultEndpoint = Endpoint.tcp(host: "127.0.0.1", port: defaultPort)
    /// The allowed database numbers (`SELECT`).
    public static let databaseRange: ClosedRange<Int> = 0...Int(Int32.max)
    /// The allowed values of ``maxConnections``.
    public static let maxConnectionsRange: ClosedRange<Int> = 1...1024
    /// The allowed values of ``visibilityTimeout``: 1 ms to 7 days.
    public static let visibilityTimeoutRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400 * 7)
    /// The allowed values of ``maxDeliveries``.
    public static let maxDeliveriesRange: ClosedRange<Int> = 1...1_000_000
    /// The allowed values of ``blockTime``: 1 ms to 60 s. Zero is not allowed because
    /// `XREADGROUP … BLOCK 0` waits forever.
    public static let blockTimeRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(60)
    /// The allowed values of an explicit ``socketTimeoutOverride`` (it must also exceed ``blockTime``).
    public static let socketTimeoutRange: ClosedRange<Duration> = .milliseconds(2) ... .seconds(3600)
    /// How much longer than ``blockTime`` a derived ``socketTimeout`` is: 5 s.
    public static let socketTimeoutMargin: Duration = .seconds(5)
    /// The allowed caps of ``Retention/maxEntries(_:)``.
    public static let maxEntriesRange: ClosedRange<Int> = 1...1_000_000_000_000
    /// The longest ``keyPrefix``, in UTF-8 bytes.
    public static let maxKeyPrefixByteCount = 256

    // MARK: Options

    /// Where the server is. `REDIS_URL`; default ``defaultEndpoint`` (`127.0.0.1:6379`) when built
    /// in code.
    public var endpoint: Endpoint = defaultEndpoint
    /// The user name for `AUTH <username> <password>` (Redis 6 ACLs), or `nil` for the `default`
    /// user. From the user part of `REDIS_URL`.
    public var username: String?
    /// The password for `AUTH`, or `nil` for none. From `REDIS_URL` or `REDIS_PASSWORD` (which wins).
    ///
    /// Never printed: ``description``, ``redactedURL`` and errors show `***` instead.
    public var password: String?
    /// The database number selected after connecting (`SELECT`), 0 or more. The path of
    /// `REDIS_URL` (`/2`) or its `db` query parameter; default 0.
    public var database: Int = 0
    /// The most connections the backend opens to the server, 1 to 1024.
    /// `REDIS_MAX_CONNECTIONS`, default 4.
    public var maxConnections: Int = 4
    /// How long a delivered message may stay unacknowledged before it is delivered again
    /// (the min-idle time of `XAUTOCLAIM`). `ABE_REDIS_VISIBILITY_TIMEOUT`, default 30 s.
    public var visibilityTimeout: Duration = .seconds(30)
    /// Deliveries after which a failing message moves to the dead-letter key `<key>:dead-letter`.
    /// `ABE_REDIS_MAX_DELIVERIES`, default 5.
    public var maxDeliveries: Int = 5
    /// How long one `XREADGROUP … BLOCK` waits for new entries before the consumer loops again
    /// (to notice cancellation, new keys and expired deliveries). 1 ms to 60 s.
    /// `ABE_REDIS_BLOCK_TIME`, default 1 s.
    public var blockTime: Duration = .seconds(1)
    /// An explicit socket read timeout, or `nil` (the default) to derive it from ``blockTime``.
    /// `ABE_REDIS_SOCKET_TIMEOUT`.
    ///
    /// When set it must be longer than ``blockTime``: a blocking read legitimately takes the whole
    /// block time plus a round trip, and a shorter socket timeout would break every idle read.
    /// ``validate()`` and ``init(environment:)`` reject a value that is not.
    public var socketTimeoutOverride: Duration?
    /// What happens to acknowledged and unread entries. `ABE_REDIS_MAX_ENTRIES` sets a cap;
    /// default ``Retention/acknowledgedByAllGroups``.
    public var retention: Retention = .acknowledgedByAllGroups
    /// Text put in front of every Redis key the provider reads or writes (streams, dead-letter
    /// streams, bookkeeping), for sharing one database between applications, e.g. `"billing:"`.
    /// Applications never see it in ``MessageQueueKey``s. `ABE_REDIS_KEY_PREFIX`, default `""`,
    /// which keeps stream names identical to the upstream Python provider's.
    ///
    /// Avoid `{` and `}`: in Redis Cluster they would make the prefix a hash tag and put every
    /// key into one slot.
    public var keyPrefix: String = ""
    /// The group `consume(group: nil)` joins. `ABE_DEFAULT_GROUP`, default `default`.
    public var defaultGroup: ConsumerGroup = .defaultGroup

    /// The socket read timeout the provider sets on every connection (again after each reconnect):
    /// ``socketTimeoutOverride`` if set, otherwise ``blockTime`` + ``socketTimeoutMargin``
    /// (6 s with the defaults). Always longer than ``blockTime`` in a configuration that passes
    /// ``validate()``.
    public var socketTimeout: Duration {
        socketTimeoutOverride ?? blockTime + Self.socketTimeoutMargin
    }

    /// Creates a configuration; every option has its documented default.
    ///
    /// The values are checked by ``validate()``, which the backend calls before connecting.
    public init(
        endpoint: Endpoint = defaultEndpoint,
        username: String? = nil,
        password: String? = nil,
        database: Int = 0,
        maxConnections: Int = 4,
        visibilityTimeout: Duration = .seconds(30),
        maxDeliveries: Int = 5,
        blockTime: Duration = .seconds(1),
        socketTimeout: Duration? = nil,
        retention: Retention = .acknowledgedByAllGroups,
        keyPrefix: String = "",
        defaultGroup: ConsumerGroup = .defaultGroup
    ) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
        self.maxConnections = maxConnections
        self.visibilityTimeout = visibilityTimeout
        self.maxDeliveries = maxDeliveries
        self.blockTime = blockTime
        self.socketTimeoutOverride = socketTimeout
        self.retention = retention
        self.keyPrefix = keyPrefix
        self.defaultGroup = defaultGroup
    }

    // MARK: Environment

    /// Reads the configuration from the environment.
    ///
    /// `REDIS_URL` is required: `redis://[user[:password]@]host[:port][/db]` (percent-encode
    /// special characters in the user name and password; IPv6 hosts in brackets, `[::1]`;
    /// port 6379 and database 0 by default; `?db=N` is accepted too) or
    /// `unix://[user[:password]@]/path/to/redis.sock[?db=N]`. `REDIS_PASSWORD` overrides the URL's
    /// password. The other variables are listed in ``variables``.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad variable and
    /// what is wrong with it; a URL in an error has its password replaced by `***`. A `rediss://`
    /// URL or a true `REDIS_SSL` fails because TLS is not supported (see the type's documentation).
    public init(environment: [String: String]) throws(MessageQueueError) {
        let reader = EnvironmentReader(environment)
        if try reader.boolean(Variable.ssl, default: false) {
            throw Self.tlsUnsupported("\(Variable.ssl)=\(RedisURL.quoted(reader.string(Variable.ssl) ?? "")) asks for TLS")
        }
        guard let url = reader.string(Variable.url) else {
            throw MessageQueueError(
                .invalidConfiguration,
                "\(Variable.url) is not set; set it to redis://[user[:password]@]host[:port][/db] "
                    + "(e.g. redis://localhost:6379/0) or unix:///path/to/redis.sock"
            )
        }
        let parsed = try RedisURL.parse(url, variable: Variable.url)
        endpoint = parsed.endpoint
        username = parsed.username
        password = parsed.password
        database = parsed.database
        // Used exactly as given: a password is not trimmed. Empty means unset.
        if let override = environment[Variable.password], !override.isEmpty {
            password = override
        }

        maxConnections = try reader.integer(Variable.maxConnections, default: maxConnections, in: Self.maxConnectionsRange)
        visibilityTimeout = try reader.duration(
            Variable.visibilityTimeout, default: visibilityTimeout, in: Self.visibilityTimeoutRange
        )
        maxDeliveries = try reader.integer(Variable.maxDeliveries, default: maxDeliveries, in: Self.maxDeliveriesRange)
        blockTime = try reader.duration(Variable.blockTime, default: blockTime, in: Self.blockTimeRange)
        if let text = reader.string(Variable.socketTimeout) {
            let timeout = try reader.duration(Variable.socketTimeout, default: .zero, in: Self.socketTimeoutRange)
            guard timeout > blockTime else {
                throw reader.invalid(
                    Variable.socketTimeout, text,
                    "must be longer than \(Variable.blockTime) (\(blockTime.formatted)): a blocking "
                        + "XREADGROUP takes the whole block time plus a round trip; raise it or leave it unset "
                        + "to use the block time + \(Self.socketTimeoutMargin.formatted)"
                )
            }
            socketTimeoutOverride = timeout
        }
        if reader.string(Variable.maxEntries) != nil {
            retention = .maxEntries(try reader.integer(Variable.maxEntries, default: 0, in: Self.maxEntriesRange))
        }
        if let prefix = reader.string(Variable.keyPrefix) {
            if let problem = Self.keyPrefixProblem(prefix) {
                throw reader.invalid(Variable.keyPrefix, prefix, problem)
            }
            keyPrefix = prefix
        }
        defaultGroup = try ConsumerGroup.configuredDefault(in: environment)
        try validate()
    }

    /// The environment variables the Redis provider reads.
    public enum Variable {
        /// The server URL (required): `redis://[user[:password]@]host[:port][/db]` or
        /// `unix:///path/to/redis.sock[?db=N]`.
        public static let url = "REDIS_URL"
        /// The password; overrides one in `REDIS_URL`.
        public static let password = "REDIS_PASSWORD"
        /// TLS switch of other Redis clients; any true value is rejected (no TLS support).
        public static let ssl = "REDIS_SSL"
        /// The most connections the backend opens.
        public static let maxConnections = "REDIS_MAX_CONNECTIONS"
        /// Time before an unacknowledged delivery is delivered again.
        public static let visibilityTimeout = "ABE_REDIS_VISIBILITY_TIMEOUT"
        /// Deliveries before a message moves to the dead-letter key.
        public static let maxDeliveries = "ABE_REDIS_MAX_DELIVERIES"
        /// The `BLOCK` time of `XREADGROUP`.
        public static let blockTime = "ABE_REDIS_BLOCK_TIME"
        /// An explicit socket read timeout, longer than the block time.
        public static let socketTimeout = "ABE_REDIS_SOCKET_TIMEOUT"
        /// An explicit cap on entries per stream.
        public static let maxEntries = "ABE_REDIS_MAX_ENTRIES"
        /// A prefix for every Redis key the provider uses.
        public static let keyPrefix = "ABE_REDIS_KEY_PREFIX"
    }

    /// Every environment variable of the Redis provider, with its format and default, for
    /// provider descriptors and tools. `REDIS_URL` and `REDIS_PASSWORD` are marked secret.
    public static let variables: [EnvironmentVariable] = [
        EnvironmentVariable(
            Variable.url,
            "required: redis://[user[:password]@]host[:port][/db] (port 6379 and db 0 by default, IPv6 as [::1], "
                + "percent-encode special characters in user and password) or unix:///path/to/redis.sock[?db=N]; "
                + "rediss:// (TLS) is not supported",
            isSecret: true
        ),
        EnvironmentVariable(Variable.password, "the password; overrides one in REDIS_URL (used as given, not trimmed)", isSecret: true),
        EnvironmentVariable(
            Variable.ssl,
            "not supported: a true value fails, because TLS needs hiredis ≥ 1.0 and Debian 12 ships 0.14; "
                + "use a local TLS terminator such as stunnel"
        ),
        EnvironmentVariable(Variable.maxConnections, "the most connections to Redis (1 to 1024, default 4)"),
        EnvironmentVariable(
            Variable.visibilityTimeout,
            "time before an unacknowledged delivery is redelivered (XAUTOCLAIM min-idle), 1ms to 7 days (default 30s)"
        ),
        EnvironmentVariable(Variable.maxDeliveries, "deliveries before a message moves to <key>:dead-letter (default 5)"),
        EnvironmentVariable(Variable.blockTime, "how long one XREADGROUP BLOCK waits, 1ms to 60s (default 1s)"),
        EnvironmentVariable(
            Variable.socketTimeout,
            "socket read timeout, must be longer than ABE_REDIS_BLOCK_TIME (default: block time + 5s)"
        ),
        EnvironmentVariable(
            Variable.maxEntries,
            "cap on entries per stream; drops the oldest entries even if unread (default: unset, entries are "
                + "trimmed only after every group acknowledged them)"
        ),
        EnvironmentVariable(Variable.keyPrefix, "text put in front of every Redis key the provider uses (default empty)"),
        EnvironmentVariable(ConsumerGroup.defaultGroupVariable, "the group consume(group: nil) joins (default \"default\")"),
    ]

    // MARK: Validation

    /// Checks every option against its documented range, and that ``socketTimeout`` is longer
    /// than ``blockTime``.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad property.
    /// ``init(environment:)`` calls it; the backend calls it again before connecting.
    public func validate() throws(MessageQueueError) {
        func invalid(_ property: String, _ problem: String) -> MessageQueueError {
            MessageQueueError(.invalidConfiguration, "RedisConfiguration.\(property) \(problem)")
        }
        switch endpoint {
        case let .tcp(host, port):
            if host.isEmpty { throw invalid("endpoint", "has an empty host") }
            if host.unicodeScalars.contains(where: { $0.properties.generalCategory == .control || $0 == " " }) {
                throw invalid("endpoint", "has a host with a space or control character")
            }
            if !(1...65_535).contains(port) { throw invalid("endpoint", "has the port \(port); use 1 to 65535") }
        case let .unixSocket(path):
            if let problem = RedisURL.socketPathProblem(path) { throw invalid("endpoint", problem) }
        }
        if !Self.databaseRange.contains(database) {
            throw invalid("database", "is \(database); use 0 to \(Self.databaseRange.upperBound)")
        }
        if !Self.maxConnectionsRange.contains(maxConnections) {
            throw invalid("maxConnections", "is \(maxConnections); use 1 to 1024")
        }
        if !Self.visibilityTimeoutRange.contains(visibilityTimeout) {
            throw invalid("visibilityTimeout", "is \(visibilityTimeout.formatted); use 1ms to 7 days")
        }
        if !Self.maxDeliveriesRange.contains(maxDeliveries) {
            throw invalid("maxDeliveries", "is \(maxDeliveries); use 1 to \(Self.maxDeliveriesRange.upperBound)")
        }
        if !Self.blockTimeRange.contains(blockTime) {
            throw invalid("blockTime", "is \(blockTime.formatted); use 1ms to 60s (BLOCK 0 would wait forever)")
        }
        if let timeout = socketTimeoutOverride {
            if !Self.socketTimeoutRange.contains(timeout) {
                throw invalid("socketTimeoutOverride", "is \(timeout.formatted); use 2ms to 1h")
            }
            if timeout <= blockTime {
                throw invalid(
                    "socketTimeoutOverride",
                    "(\(timeout.formatted)) must be longer than blockTime (\(blockTime.formatted)): "
                        + "a blocking XREADGROUP takes the whole block time plus a round trip; raise it or set it to nil "
                        + "to use blockTime + \(Self.socketTimeoutMargin.formatted)"
                )
            }
        }
        if case let .maxEntries(count) = retention, !Self.maxEntriesRange.contains(count) {
            throw invalid("retention", "caps a stream at \(count) entries; use 1 to \(Self.maxEntriesRange.upperBound)")
        }
        if let problem = Self.keyPrefixProblem(keyPrefix) {
            throw invalid("keyPrefix", problem)
        }
    }

    static func keyPrefixProblem(_ prefix: String) -> String? {
        let byteCount = prefix.utf8.count
        if byteCount > maxKeyPrefixByteCount {
            return "is \(byteCount) UTF-8 bytes long; the limit is \(maxKeyPrefixByteCount)"
        }
        if prefix.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            return "contains a control character; control characters (including NUL, tab and newline) are not allowed"
        }
        return nil
    }

    static func tlsUnsupported(_ what: String) -> MessageQueueError {
        MessageQueueError(
            .invalidConfiguration,
            "\(what), which the Redis provider does not support: TLS needs hiredis ≥ 1.0 built with TLS support, "
                + "and Debian 12's libhiredis 0.14 has none. Run a local TLS terminator such as stunnel (client mode, "
                + "forwarding to the TLS server) and set REDIS_URL=redis://127.0.0.1:<its port>, or use a plain "
                + "redis:// URL on a trusted network."
        )
    }

    // MARK: Redaction

    /// The configuration's server as a URL with the password replaced by `***`, for logs and
    /// diagnostics: `redis://user:***@host:6379/2`, `redis://[::1]:6379/0`,
    /// `unix:///var/run/redis.sock?db=0`. Without the password it parses back to the same endpoint,
    /// user and database.
    public var redactedURL: String {
        var userinfo = ""
        if username != nil || password != nil {
            userinfo = (username.map { RedisURL.percentEncoded($0) } ?? "") + (password == nil ? "" : ":***") + "@"
        }
        switch endpoint {
        case let .tcp(host, port):
            return "redis://\(userinfo)\(RedisURL.bracketed(host)):\(port)/\(database)"
        case let .unixSocket(path):
            return "unix://\(userinfo)\(RedisURL.percentEncoded(path, keepingSlashes: true))?db=\(database)"
        }
    }

    /// `url` with anything that may be a password replaced by `***`, for showing a Redis URL
    /// from the environment in diagnostics, such as `redis://user:***@host:6379/2`.
    ///
    /// Works on malformed input too: everything between the first `:` and the last `@` after the
    /// scheme is hidden, a user part that does not look like a user name is hidden whole, an
    /// invalid port in a URL without `@` is hidden (it may be a password given without a host), and
    /// so are the values of query parameters such as `password=`.
    public static func redactedURL(_ url: String) -> String {
        RedisURL.redacted(url)
    }
}

extension RedisConfiguration: CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    /// A one-line summary with the password redacted, e.g.
    /// `RedisConfiguration(url: redis://user:***@host:6379/2, maxConnections: 4, …)`.
    public var description: String {
        let socket = socketTimeout.formatted + (socketTimeoutOverride == nil ? " (derived)" : "")
        return "RedisConfiguration(url: \(redactedURL), maxConnections: \(maxConnections), "
            + "visibilityTimeout: \(visibilityTimeout.formatted), maxDeliveries: \(maxDeliveries), "
            + "blockTime: \(blockTime.formatted), socketTimeout: \(socket), retention: \(retention), "
            + "keyPrefix: \(RedisURL.quoted(keyPrefix)), defaultGroup: \(RedisURL.quoted(defaultGroup.name)))"
    }

    /// The same as ``description``: the password is redacted here too.
    public var debugDescription: String { description }

    /// The options with the password shown as `***`, so `dump(configuration)` does not reveal it.
    public var customMirror: Mirror {
        Mirror(
            self,
            children: [
                "endpoint": endpoint,
                "username": username as Any,
                "password": (password == nil ? nil : "***") as String? as Any,
                "database": database,
                "maxConnections": maxConnections,
                "visibilityTimeout": visibilityTimeout,
                "maxDeliveries": maxDeliveries,
                "blockTime": blockTime,
                "socketTimeout": socketTimeout,
                "socketTimeoutOverride": socketTimeoutOverride as Any,
                "retention": retention,
                "keyPrefix": keyPrefix,
                "defaultGroup": defaultGroup,
            ],
            displayStyle: .struct
        )
    }
}
