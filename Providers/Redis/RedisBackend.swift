import AbstractBackend
import CHiredis
import Logging
import Synchronization

/// The Abstract Backend model on Redis Streams, through hiredis: durable, shared by any number
/// of processes, and wire-compatible with the upstream Python provider.
///
/// Each key is a stream; each message one entry `XADD <key> * data <json>`. Groups are stream
/// consumer groups, acknowledgement is `XACK`, redelivery after the visibility timeout is
/// `XAUTOCLAIM`, and dead letters go to `<key>:dead-letter`. Connections are opened lazily, each
/// owned by a thread of its own; concurrent publishes share one pipelined connection, and every
/// consumer iterator blocks on a connection of its own.
///
/// ```swift
/// let backend = try RedisBackend(configuration: RedisConfiguration(environment: environment))
/// try await backend.publish(["order": 42], to: MessageQueueKey("orders"))
/// for try await message in backend.consume(group: nil) {
///     try await handle(message.payload)
///     try await message.ack()
/// }
/// ```
///
/// See docs/redis.md for the mapping onto Redis commands and what each guarantee rests on.
public final class RedisBackend: MessageQueueBackend {
    /// `redis`.
    public static let providerName = "redis"

    /// The descriptor to pass to `loadBackend(providers:)`; configured when `REDIS_URL` is set.
    public static let provider = MessageQueueProvider(
        RedisBackend.self,
        aliases: ["redis-streams"],
        product: "AbstractBackendRedis",
        summary: "Redis Streams through hiredis: durable, shared between processes, compatible with the upstream Python provider",
        environmentVariables: RedisConfiguration.variables,
        configuringVariables: [RedisConfiguration.Variable.url]
    )

    /// The options this backend runs with.
    public let configuration: RedisConfiguration
    let logger: Logger
    let names: RedisNames
    /// The pipelined connection for publishes, acknowledgements and housekeeping.
    let commands: RedisConnection
    private let state = Mutex(State())
    /// Bumped when this process registers a key, so consumers of every key look again at once.
    let keyGeneration = Atomic<Int>(0)
    /// The last `nack` reason per delivery, for dead letters written when a delivery times out.
    let lastErrors = LastErrors()
    let metrics = MessageQueueMetrics(provider: providerName)

    private let closed = Atomic<Bool>(false)

    private struct State {
        /// Keys this backend has added to the key registry, with what publishing to them needs.
        var registeredKeys: [MessageQueueKey: PublishTarget] = [:]
        /// Consumer connections open now, counted against ``RedisConfiguration/maxConnections``.
        var consumerConnections: [ObjectIdentifier: RedisConnection] = [:]
        var consumerCounter = 0
    }

    /// Creates a backend. No connection is opened until the first call needs one.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` when `configuration` does not pass
    /// ``RedisConfiguration/validate()``.
    public init(configuration: RedisConfiguration, logger: Logger = Logger(label: "abe.redis")) throws(MessageQueueError) {
        try configuration.validate()
        self.configuration = configuration
        self.logger = logger
        self.names = RedisNames(prefix: configuration.keyPrefix)
        self.commands = RedisConnection(configuration: configuration, role: "commands", spins: true, logger: logger)
        if case .maxEntries(let cap) = configuration.retention {
            logger.warning("redis streams are capped: the oldest entries are dropped past the cap even if a group has not read them", metadata: ["maxEntries": "\(cap)"])
        }
    }

    /// Creates a backend from `REDIS_URL`, `REDIS_PASSWORD`, `REDIS_MAX_CONNECTIONS`,
    /// `ABE_REDIS_*` and `ABE_DEFAULT_GROUP`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> RedisBackend {
        try RedisBackend(configuration: RedisConfiguration(environment: environment))
    }

    nonisolated(nonsending) public func publish(_ payload: MessageQueuePayload, to key: MessageQueueKey) async throws {
        var command = RESPCommand()
        let target = try publishTarget(for: key, registeringInto: &command)
        try command.appendXADD(prefix: target.prefix, payload: payload)
        let started = target.metrics.start()
        try await send(command, for: "XADD")
        target.metrics.published(startedAt: started)
    }

    /// Publishes the whole batch in one pipelined write: one `XADD` per message, in order.
    /// Every payload is encoded before anything is sent, so an invalid one publishes nothing.
    nonisolated(nonsending) public func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        guard !batch.isEmpty else { return }
        var command = RESPCommand()
        var runs: [(metrics: MessageQueueMetrics.Publishing, count: Int)] = []
        var previous: (key: MessageQueueKey, target: PublishTarget)?
        for item in batch {
            // Batches usually go to one key: look it up (a lock and a hash) only when it changes.
            let target: PublishTarget
            if let previous, previous.key == item.key {
                target = previous.target
            } else {
                target = try publishTarget(for: item.key, registeringInto: &command)
                previous = (item.key, target)
            }
            try command.appendXADD(prefix: target.prefix, payload: item.payload)
            if let last = runs.last, last.metrics === target.metrics {
                runs[runs.count - 1].count += 1
            } else {
                runs.append((target.metrics, 1))
            }
        }
        let started = runs[0].metrics.start()
        try await send(command, for: "XADD")
        for run in runs { run.metrics.published(run.count, startedAt: started) }
    }

    public func consume(group: ConsumerGroup?) -> RedisConsumer {
        RedisConsumer(backend: self, keys: nil, group: group ?? configuration.defaultGroup)
    }

    public func consume(keys: [MessageQueueKey], group: ConsumerGroup?) -> RedisConsumer {
        RedisConsumer(backend: self, keys: keys, group: group ?? configuration.defaultGroup)
    }

    /// Flushes queued acknowledgements, then closes every connection; consumers end with
    /// ``MessageQueueError/Code/closed``. Calling it twice is harmless.
    nonisolated(nonsending) public func close() async {
        closed.store(true, ordering: .releasing)
        let consumers = state.withLock { Array($0.consumerConnections.values) }
        for connection in consumers { await connection.close() }
        // Closing fails what is still queued; the connection answers in order, so once this PING
        // is answered the acknowledgements queued before it have been sent. (Unreachable: they
        // fail anyway, and waiting for the backoff would only delay the close.)
        if !commands.isUnreachable { _ = await commands.outcome(RESPCommand("PING")) }
        await commands.close()
    }

    // MARK: Internals shared with consumers

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// The `MAXLEN ~` cap of every `XADD`, when retention is capped.
    private var maxLength: Int? {
        if case .maxEntries(let count) = configuration.retention { return count }
        return nil
    }

    /// What a publish to one key needs, looked up once per call.
    private struct PublishTarget {
        /// The encoded start of an `XADD` to the key's stream.
        let prefix: [UInt8]
        let metrics: MessageQueueMetrics.Publishing
    }

    /// The `XADD` prefix and metrics of `key`. The first time this backend publishes to `key` it
    /// also adds `SADD <registry> <key>` to `command`, so consumers of every key in any process
    /// find it without `KEYS`.
    private func publishTarget(for key: MessageQueueKey, registeringInto command: inout RESPCommand) throws(MessageQueueError) -> PublishTarget {
        guard !isClosed else { throw .closed(Self.providerName) }
        if let known = state.withLock({ $0.registeredKeys[key] }) { return known }
        guard key.rawValue != RedisNames.registryName else {
            throw MessageQueueError(.invalidKey, "the key \"\(key)\" is reserved by the Redis provider for its key registry; use another key")
        }
        let made = PublishTarget(
            prefix: RESPCommand.xaddPrefix(stream: names.stream(key), maxLength: maxLength),
            metrics: metrics.publishing(to: key)
        )
        if state.withLock({ $0.registeredKeys.updateValue(made, forKey: key) == nil }) {
            command.append([Array("SADD".utf8), names.registry, Array(key.rawValue.utf8)])
            keyGeneration.add(1, ordering: .relaxed)
        }
        return made
    }

    /// Sends `command` on the command connection and throws the first error among its replies.
    func send(_ command: RESPCommand, for name: String) async throws(MessageQueueError) {
        switch await commands.outcome(command) {
        case .ok:
            return
        case .errorReply(let message):
            throw RedisErrors.reply(message, command: name, configuration: configuration)
        case .failed(let error):
            if error.code == .unavailable || error.code == .timeout, isClosed { throw .closed(Self.providerName) }
            throw error
        }
    }

    /// Opens the blocking connection of a new consumer iterator, or throws when
    /// ``RedisConfiguration/maxConnections`` would be exceeded. `close()` closes it too.
    func openConsumerConnection() throws(MessageQueueError) -> RedisConnection {
        guard !isClosed else { throw .closed(Self.providerName) }
        let connection = try state.withLock { state throws(MessageQueueError) -> RedisConnection in
            // One connection is the shared command connection.
            guard state.consumerConnections.count + 1 < configuration.maxConnections else {
                throw MessageQueueError(
                    .unavailable,
                    "REDIS_MAX_CONNECTIONS is \(configuration.maxConnections): one connection publishes and acknowledges and each consuming iterator needs one more, so at most \(configuration.maxConnections - 1) iterators can consume at once; raise REDIS_MAX_CONNECTIONS"
                )
            }
            state.consumerCounter += 1
            let connection = RedisConnection(configuration: configuration, role: "consumer-\(state.consumerCounter)", spins: false, logger: logger)
            state.consumerConnections[ObjectIdentifier(connection)] = connection
            return connection
        }
        // close() may have run between the check and the registration.
        if isClosed { Task { await connection.close() } }
        return connection
    }

    /// Closes a consumer iterator's connection and frees its place.
    func closeConsumerConnection(_ connection: RedisConnection) async {
        _ = state.withLock { $0.consumerConnections.removeValue(forKey: ObjectIdentifier(connection)) }
        await connection.close()
    }
}

/// The last `nack` reason of recent deliveries, bounded, so a dead letter written after a
/// timeout can still say what went wrong the last time.
final class LastErrors: Sendable {
    private let entries = Mutex<[String: String]>([:])
    static let limit = 10_000

    func record(_ reason: String, stream: String, group: ConsumerGroup, id: String) {
        entries.withLock { entries in
            if entries.count >= Self.limit { entries.removeAll(keepingCapacity: true) }
            entries["\(stream)\u{0}\(group.name)\u{0}\(id)"] = reason
        }
    }

    func take(stream: String, group: ConsumerGroup, id: String) -> String? {
        entries.withLock { $0.removeValue(forKey: "\(stream)\u{0}\(group.name)\u{0}\(id)") }
    }
}
