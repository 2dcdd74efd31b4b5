import AbstractBackend

extension RedisBackend {
    /// Publishes `batch` as ``publish(_:)`` does — `SADD` to the key registry, then one `XADD`
    /// per message, in one pipelined write — and returns the entry id of each message, in order.
    ///
    /// For `abe publish --print-ids`: ``MessageQueueBackend/publish(_:)`` returns nothing, so
    /// this reads the `XADD` replies the command connection otherwise only checks for errors.
    package func publishReturningIDs(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws(MessageQueueError) -> [String] {
        guard !batch.isEmpty else { return [] }
        var command = RESPCommand()
        var registered: Set<MessageQueueKey> = []
        for item in batch where registered.insert(item.key).inserted {
            guard item.key.rawValue != RedisNames.registryName else {
                throw MessageQueueError(.invalidKey, "the key \"\(item.key)\" is reserved by the Redis provider for its key registry; use another key")
            }
            command.append([Array("SADD".utf8), names.registry, Array(item.key.rawValue.utf8)])
        }
        var cap: Int?
        if case .maxEntries(let count) = configuration.retention { cap = count }
        for item in batch {
            try command.appendXADD(prefix: RESPCommand.xaddPrefix(stream: names.stream(item.key), maxLength: cap), payload: item.payload)
        }
        let replies = try await commandReplies(command)
        if let message = replies.lazy.compactMap(\.errorMessage).first {
            throw RedisErrors.reply(message, command: "XADD", configuration: configuration)
        }
        return replies.suffix(batch.count).map { $0.text ?? "" }
    }
}
