import AbstractBackend
import CHiredis
import Logging
import Synchronization

/// Records what the application does with one iterator's messages: `ack` queues an id for the
/// next `XACK`, `nack` hands the delivery back or dead-letters it.
///
/// Separate from ``ConsumerSession`` because every message points at it: buffered messages must
/// not keep an abandoned iterator (and its connection) alive.
final class DeliveryAcknowledger: MessageAcknowledger {
    private struct AckBuffer {
        var entries: [(key: MessageQueueKey, id: String)] = []
        var flushQueued = false
        /// Keys acknowledged since the last retention pass: only their streams can be trimmed.
        var acknowledgedKeys: Set<MessageQueueKey> = []
    }

    let backend: RedisBackend
    let group: ConsumerGroup
    let consumerName: String
    private let acks = Mutex(AckBuffer())

    init(backend: RedisBackend, group: ConsumerGroup, consumerName: String) {
        self.backend = backend
        self.group = group
        self.consumerName = consumerName
    }

    private var logger: Logger { backend.logger }
    private var visibilityTimeout: Duration { backend.configuration.visibilityTimeout }

    /// The keys acknowledged since the last call.
    func takeAcknowledgedKeys() -> Set<MessageQueueKey> {
        acks.withLock { buffer in
            defer { buffer.acknowledgedKeys.removeAll() }
            return buffer.acknowledgedKeys
        }
    }

    /// Queues `XACK` and returns; the command connection sends the queued acknowledgements of this
    /// iterator as one `XACK` per key with its next write. If that write fails, the message is
    /// delivered again after the visibility timeout (at-least-once).
    nonisolated(nonsending) func acknowledge(_ message: MessageQueueMessage) async throws {
        try checkUsable()
        let needsFlush = acks.withLock { buffer -> Bool in
            buffer.entries.append((message.key, message.id))
            defer { buffer.flushQueued = true }
            return !buffer.flushQueued
        }
        if needsFlush {
            backend.commands.enqueueDeferred({ [self] in takeAcknowledgements() }, handler: LoggingHandler(logger: logger, action: "acknowledge"))
        }
        backend.metrics.delivery(of: message.key, in: group).acknowledged()
    }

    /// Hands the delivery back: `XCLAIM … IDLE <timeout − retryAfter>` makes it due for any
    /// member's claim after `retryAfter` (at most the visibility timeout on Redis); the last
    /// allowed delivery goes to the dead letter instead. Nothing happens when the delivery is
    /// no longer this member's.
    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        try checkUsable()
        let stream = backend.names.streamName(message.key)
        let pending = try await backend.commands.value("XPENDING", stream, group.name, message.id, message.id, "1")
        guard let row = pending.elements?.first?.elements, row.count == 4,
              row[1].text == consumerName, row[3].integer == Int64(message.deliveryCount)
        else { return }
        backend.metrics.delivery(of: message.key, in: group).rejected()
        if message.deliveryCount >= backend.configuration.maxDeliveries {
            let letter = DeadLetter(
                key: message.key, group: group, id: message.id, deliveryCount: message.deliveryCount, reason: .maxDeliveries,
                lastError: reason, publishedAt: message.publishedAt, payload: message.payload
            )
            try await backend.send(deadLetterCommand(letter), for: "XADD")
            recordDeadLetter(letter)
            return
        }
        if let reason { backend.lastErrors.record(reason, stream: stream, group: group, id: message.id) }
        let idle = max(.zero, visibilityTimeout - retryAfter).wholeMilliseconds
        var command = RESPCommand()
        command.append([
            "XCLAIM", stream, group.name, consumerName, "0", message.id,
            "IDLE", String(idle), "RETRYCOUNT", String(message.deliveryCount), "JUSTID",
        ])
        try await backend.send(command, for: "XCLAIM")
    }

    private func checkUsable() throws(MessageQueueError) {
        if backend.isClosed { throw .closed(RedisBackend.providerName) }
        if backend.commands.isUnreachable {
            throw MessageQueueError(.unavailable, "Redis at \(backend.configuration.endpoint) is unreachable; the message stays pending and is delivered again after the visibility timeout")
        }
    }

    /// One `XACK <stream> <group> <id>…` per key for everything queued. Runs on the command
    /// connection when it sends the flush, or when it fails the flush unsent (the ids are then
    /// dropped, and delivered again after the visibility timeout).
    private func takeAcknowledgements() -> RESPCommand {
        let entries = acks.withLock { buffer in
            buffer.flushQueued = false
            defer { buffer.entries.removeAll(keepingCapacity: true) }
            var previous: MessageQueueKey?
            for entry in buffer.entries where entry.key != previous {
                buffer.acknowledgedKeys.insert(entry.key)
                previous = entry.key
            }
            return buffer.entries
        }
        var command = RESPCommand()
        var start = 0
        while start < entries.count {
            let key = entries[start].key
            var end = start + 1
            while end < entries.count && entries[end].key == key { end += 1 }
            var arguments = ["XACK", backend.names.streamName(key), group.name]
            arguments.reserveCapacity(3 + end - start)
            for index in start..<end { arguments.append(entries[index].id) }
            command.append(arguments)
            start = end
        }
        return command
    }

    // MARK: Dead letters

    /// `XADD <key>:dead-letter * data <envelope>` then `XACK`, in one write, in that order: the
    /// entry leaves its group only once its dead letter exists.
    private func deadLetterCommand(_ letter: DeadLetter) throws(MessageQueueError) -> RESPCommand {
        var command = RESPCommand()
        try command.appendXADD(prefix: RESPCommand.xaddPrefix(stream: backend.names.stream(letter.key.deadLetterKey), maxLength: nil), payload: letter.envelope)
        command.append(["XACK", backend.names.streamName(letter.key), letter.group.name, letter.id])
        return command
    }

    /// Sends the dead letter without waiting; failures are logged.
    func deadLetter(_ letter: DeadLetter) {
        do {
            backend.commands.enqueue(try deadLetterCommand(letter), handler: LoggingHandler(logger: logger, action: "dead-letter"))
            recordDeadLetter(letter)
        } catch {
            logger.error("cannot encode a dead letter", metadata: ["key": "\(letter.key)", "message-id": "\(letter.id)", "error": "\(error.message)"])
        }
    }

    private func recordDeadLetter(_ letter: DeadLetter) {
        backend.metrics.delivery(of: letter.key, in: letter.group).deadLettered()
        logger.warning(
            "message moved to the dead-letter key",
            metadata: [
                "key": "\(letter.key)", "group": "\(letter.group)", "message-id": "\(letter.id)",
                "delivery-count": "\(letter.deliveryCount)", "reason": "\(letter.reason)",
            ]
        )
    }
}

/// Logs the error replies and the failure of a request nobody waits for.
final class LoggingHandler: ReplyHandler, @unchecked Sendable {
    private let logger: Logger
    private let action: String

    init(logger: Logger, action: String) {
        self.logger = logger
        self.action = action
    }

    func receive(_ reply: UnsafePointer<redisReply>) {
        guard reply.pointee.type == REDIS_REPLY_ERROR else { return }
        let message = String(decoding: RedisValue.bytes(of: reply.pointee), as: UTF8.self)
        logger.error("redis rejected a command", metadata: ["action": "\(action)", "reply": "\(message)"])
    }

    func finish(_ error: MessageQueueError?) {
        guard let error, error.code != .closed else { return }
        logger.warning("redis command not applied; the affected messages are delivered again after the visibility timeout", metadata: ["action": "\(action)", "error": "\(error.message)"])
    }
}
