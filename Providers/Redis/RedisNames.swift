import AbstractBackend

/// The Redis key names the provider uses, all behind ``RedisConfiguration/keyPrefix``.
struct RedisNames: Sendable {
    /// The registry's name after the prefix. Reserved: no queue key may be called this.
    static let registryName = "abe:keys"

    let prefix: String
    /// The set of every key published through this provider (`SADD` on first publish), which
    /// consumers of every key poll instead of scanning the keyspace with `KEYS`.
    let registry: [UInt8]

    init(prefix: String) {
        self.prefix = prefix
        self.registry = Array((prefix + Self.registryName).utf8)
    }

    /// The stream that holds `key`'s messages.
    func stream(_ key: MessageQueueKey) -> [UInt8] {
        Array((prefix + key.rawValue).utf8)
    }

    /// The stream that holds `key`'s messages, as text.
    func streamName(_ key: MessageQueueKey) -> String {
        prefix + key.rawValue
    }
}
