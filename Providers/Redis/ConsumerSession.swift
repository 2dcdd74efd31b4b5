import AbstractBackend
import CHiredis
import Foundation
import Logging
import Synchronization

/// The state of one consuming iterator: its streams, its blocking connection, the messages it
/// fetched and not yet handed out, and the acknowledgements waiting to be sent.
///
/// The iteration state is touched only by the task that iterates (one at a time, as
/// `AsyncIteratorProtocol` requires); `ack`/`nack`, which any task may call, touch only the
/// mutex-protected acknowledgement buffer and the backend's command connection.
final class ConsumerSession: MessageAcknowledger, @unchecked Sendable {
    /// Entries fetched per read, the most this iterator holds unacknowledged-and-undelivered.
    static let prefetch = 256
    /// How often consumers of every key look for new keys in the registry.
    static let discoveryInterval = Duration.milliseconds(500)
    /// How often an iterator trims the streams it acknowledged entries of.
    static let trimInterval = Duration.seconds(1)

    private struct Stream {
        let key: MessageQueueKey
        let name: String
        var groupReady = false
        var claimCursor = "0-0"
    }

    private struct AckBuffer {
        var entries: [(key: MessageQueueKey, id: String)] = []
        var flushQueued = false
        /// Keys acknowledged since the last retention pass: only their streams can be trimmed.
        var acknowledgedKeys: Set<MessageQueueKey> = []
    }

    let backend: RedisBackend
    let group: ConsumerGroup
    let consumerName: String
    private let explicitKeys: [MessageQueueKey]?
    private let logger: Logger

    // Iteration state (the iterating task only).
    private var connection: RedisConnection?
    private var streams: [Stream] = []
    private var streamIndex: [String: Int] = [:]
    private var buffer: [MessageQueueMessage] = []
    private var bufferIndex = 0
    private var bufferFetchedAt = ContinuousClock.now
    private var nextClaim = ContinuousClock.now
    private var nextDiscovery = ContinuousClock.now
    private var nextTrim = ContinuousClock.now
    private var registrySize: Int64 = -1
    private var seenKeyGeneration = -1
    private var finished = false
    private var retryDelay = RedisConnection.initialBackoff
    private var lastWarning: ContinuousClock.Instant?

    // Shared with `ack`/`nack` and the cancellation handler.
    private let acks = Mutex(AckBuffer())
    private let interruptRequested = Atomic<Bool>(false)
    private let readInFlight = Atomic<Bool>(false)

    init(backend: RedisBackend, keys: [MessageQueueKey]?, group: ConsumerGroup) {
        self.backend = backend
        self.group = group
        self.explicitKeys = keys
        self.logger = backend.logger
        self.consumerName = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(ConsumerSession.nextSerial())"
        if let keys {
            for key in Set(keys).sorted() { addStream(key) }
        }
    }

    deinit {
        // An iterator dropped without being cancelled: give back what it fetched, close its connection.
        if !finished, let connection {
            releaseUndelivered()
            Task { [backend] in await backend.closeConsumerConnection(connection) }
        }
    }

    private static let serial = Atomic<Int>(0)
    private static func nextSerial() -> Int { serial.add(1, ordering: .relaxed).newValue }

    private var visibilityTimeout: Duration { backend.configuration.visibilityTimeout }
    private var claimInterval: Duration {
        min(max(visibilityTimeout / 4, .milliseconds(10)), .seconds(1))
    }

    // MARK: Iteration

    func next() async throws -> MessageQueueMessage? {
        while true {
            if Task.isCancelled {
                await finish()
                throw CancellationError()
            }
            if bufferIndex < buffer.count {
                let message = buffer[bufferIndex]
                bufferIndex += 1
                // Held past the visibility timeout: another member may have claimed it already.
                if ContinuousClock.now - bufferFetchedAt < visibilityTimeout { return message }
                continue
            }
            if finished { return nil }
            if backend.isClosed {
                await finish()
                throw MessageQueueError.closed(RedisBackend.providerName)
            }
            do {
                try await fill()
                retryDelay = RedisConnection.initialBackoff
            } catch let error as MessageQueueError where error.code == .unavailable || error.code == .timeout {
                guard !backend.isClosed else { continue }
                warnRateLimited("redis consumer cannot read; retrying", error: error)
                try await pause(retryDelay)
                retryDelay = min(retryDelay * 2, RedisConnection.maximumBackoff)
            } catch is CancellationError {
                await finish()
                throw CancellationError()
            } catch {
                await finish()
                throw error
            }
        }
    }

    /// Fetches the next messages into the buffer: new keys, group creation, expired deliveries of
    /// other members, then new entries (waiting up to the block time).
    private func fill() async throws {
        let connection = try openConnection()
        if explicitKeys == nil { try await discoverKeys(on: connection) }
        try await createGroups(on: connection)
        guard !streams.isEmpty else {
            try await pause(Self.discoveryInterval)
            return
        }
        let now = ContinuousClock.now
        if now >= nextClaim {
            nextClaim = now + claimInterval
            try await claimExpired(on: connection)
            if bufferIndex < buffer.count { return }
        }
        if now >= nextTrim {
            nextTrim = now + Self.trimInterval
            try await trimAcknowledged(on: connection)
        }
        try await readNew(on: connection)
    }

    private func openConnection() throws(MessageQueueError) -> RedisConnection {
        if let connection { return connection }
        let made = try backend.openConsumerConnection()
        connection = made
        return made
    }

    private func addStream(_ key: MessageQueueKey) {
        let name = backend.names.streamName(key)
        guard streamIndex[name] == nil else { return }
        streamIndex[name] = streams.count
        streams.append(Stream(key: key, name: name))
    }

    /// Consumers of every key poll the key registry (`SCARD`, then `SMEMBERS` when it grew), at
    /// once after this process registered a key and otherwise every ``discoveryInterval``.
    private func discoverKeys(on connection: RedisConnection) async throws {
        let generation = backend.keyGeneration.load(ordering: .relaxed)
        let now = ContinuousClock.now
        guard now >= nextDiscovery || generation != seenKeyGeneration else { return }
        nextDiscovery = now + Self.discoveryInterval
        seenKeyGeneration = generation
        let registry = backend.names.prefix + RedisNames.registryName
        let size = try await connection.value("SCARD", registry).integer ?? 0
        guard size != registrySize else { return }
        registrySize = size
        let members = try await connection.value("SMEMBERS", registry).elements ?? []
        for member in members.compactMap(\.text).sorted() {
            // Dead letters are read only when asked for by name.
            guard let key = try? MessageQueueKey(member), !key.isDeadLetter else { continue }
            addStream(key)
        }
    }

    /// `XGROUP CREATE <stream> <group> 0 MKSTREAM` for each stream not set up yet: a new group
    /// starts at the oldest entry still in the stream.
    private func createGroups(on connection: RedisConnection) async throws {
        let pending = streams.indices.filter { !streams[$0].groupReady }
        guard !pending.isEmpty else { return }
        var command = RESPCommand()
        for index in pending {
            command.append(["XGROUP", "CREATE", streams[index].name, group.name, "0", "MKSTREAM"])
        }
        let replies = try await connection.values(command)
        var unusable: Set<Int> = []
        for (index, reply) in zip(pending, replies) {
            guard let message = reply.errorMessage, !message.hasPrefix("BUSYGROUP") else {
                streams[index].groupReady = true
                continue
            }
            let error = RedisErrors.reply(message, command: "XGROUP", configuration: backend.configuration)
            guard explicitKeys == nil, error.code == .invalidKey else { throw error }
            logger.error("redis key is not a stream; not consuming it", metadata: ["key": "\(streams[index].key)", "error": "\(message)"])
            unusable.insert(index)
        }
        if !unusable.isEmpty {
            streams = streams.enumerated().filter { !unusable.contains($0.offset) }.map(\.element)
            streamIndex = Dictionary(uniqueKeysWithValues: streams.enumerated().map { ($0.element.name, $0.offset) })
        }
    }

    /// `XREADGROUP … BLOCK … STREAMS … >`: new entries, waiting at most until the next claim or
    /// discovery is due. Cancellation interrupts the wait with `CLIENT UNBLOCK`.
    private func readNew(on connection: RedisConnection) async throws {
        let now = ContinuousClock.now
        var wait = min(backend.configuration.blockTime, nextClaim - now)
        if explicitKeys == nil { wait = min(wait, nextDiscovery - now) }
        let blockMilliseconds = max(1, Self.milliseconds(wait))
        let names = streams.map(\.name)
        let group = group.name
        let consumer = consumerName
        interruptRequested.store(false, ordering: .relaxed)
        readInFlight.store(true, ordering: .releasing)
        defer { readInFlight.store(false, ordering: .releasing) }
        let result = await withTaskCancellationHandler {
            await withUnsafeContinuation { continuation in
                connection.enqueueDeferred({ [self] in
                    var arguments = ["XREADGROUP", "GROUP", group, consumer, "COUNT", String(Self.prefetch)]
                    // Cancelled before the read went out: do not wait at all.
                    if !interruptRequested.load(ordering: .acquiring) { arguments += ["BLOCK", String(blockMilliseconds)] }
                    arguments.append("STREAMS")
                    arguments += names
                    arguments += Array(repeating: ">", count: names.count)
                    var command = RESPCommand()
                    command.append(arguments)
                    return command
                }, handler: StreamReader(kind: .readGroup, streams: names, continuation))
            }
        } onCancel: {
            self.interruptRead(blockedFor: .milliseconds(blockMilliseconds))
        }
        switch result {
        case .success(let batches):
            try await deliver(batches, claimed: false)
        case .failure(.connection(let error)):
            throw error
        case .failure(.reply(let message)):
            try handleReadError(message)
        }
    }

    /// Ends a blocked read early: `CLIENT UNBLOCK <id> TIMEOUT` from the command connection,
    /// repeated until the read is over (the read may not have reached the server yet).
    private func interruptRead(blockedFor block: Duration) {
        interruptRequested.store(true, ordering: .releasing)
        guard let connection else { return }
        let commands = backend.commands
        Task { [self] in
            let deadline = ContinuousClock.now + block + .milliseconds(200)
            while readInFlight.load(ordering: .acquiring), ContinuousClock.now < deadline {
                if let id = connection.serverClientID,
                   let unblocked = try? await commands.value("CLIENT", "UNBLOCK", String(id), "TIMEOUT").integer,
                   unblocked == 1 {
                    return
                }
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    /// `NOGROUP`: the stream or the group vanished (deleted, or a server restarted without
    /// persistence). Recreate the groups and go on.
    private func handleReadError(_ message: String) throws {
        guard message.hasPrefix("NOGROUP") else {
            throw RedisErrors.reply(message, command: "XREADGROUP", configuration: backend.configuration)
        }
        logger.warning("redis consumer group missing; recreating it", metadata: ["group": "\(group)", "reply": "\(message)"])
        for index in streams.indices { streams[index].groupReady = false }
    }

    /// `XAUTOCLAIM` of every stream: deliveries of this group idle for the visibility timeout,
    /// with their delivery counts from `XPENDING`. Those past `maxDeliveries` go to the dead letter.
    private func claimExpired(on connection: RedisConnection) async throws {
        let timeout = String(Self.milliseconds(visibilityTimeout))
        var command = RESPCommand()
        for stream in streams {
            command.append(["XAUTOCLAIM", stream.name, group.name, consumerName, timeout, stream.claimCursor, "COUNT", String(Self.prefetch)])
        }
        let names = streams.map(\.name)
        let result = await withUnsafeContinuation { continuation in
            connection.enqueue(command, handler: StreamReader(kind: .autoClaim, streams: names, continuation))
        }
        let batches: [StreamBatch]
        switch result {
        case .success(let value): batches = value
        case .failure(.connection(let error)): throw error
        case .failure(.reply(let message)):
            try handleReadError(message)
            return
        }
        for batch in batches {
            if let index = streamIndex[batch.stream], let cursor = batch.nextCursor { streams[index].claimCursor = cursor }
        }
        try await deliver(batches.filter { !$0.entries.isEmpty }, claimed: true)
    }

    /// Turns fetched entries into buffered messages; dead-letters entries without a payload and
    /// claimed entries past `maxDeliveries`.
    private func deliver(_ batches: [StreamBatch], claimed: Bool) async throws {
        guard !batches.isEmpty else { return }
        var counts: [String: Int] = [:]
        if claimed { counts = try await deliveryCounts(batches) }
        let fetchedAt = ContinuousClock.now
        var messages: [MessageQueueMessage] = []
        messages.reserveCapacity(batches.reduce(0) { $0 + $1.entries.count })
        for batch in batches {
            guard let index = streamIndex[batch.stream] else { continue }
            let key = streams[index].key
            for entry in batch.entries {
                let count = claimed ? (counts[entry.id] ?? 2) : 1
                let publishedAt = Date(timeIntervalSince1970: Double(entry.milliseconds) / 1000)
                switch entry.body {
                case .invalid(let reason, let raw):
                    logger.warning("redis entry has no valid payload; moving it to the dead letter", metadata: ["key": "\(key)", "id": "\(entry.id)", "reason": "\(reason)"])
                    deadLetter(DeadLetter(
                        key: key, group: group, id: entry.id, deliveryCount: count, reason: .invalidPayload,
                        lastError: reason, publishedAt: publishedAt, payload: ["raw": .string(raw)]
                    ))
                case .payload(let payload) where count > backend.configuration.maxDeliveries:
                    let lastError = backend.lastErrors.take(stream: batch.stream, group: group, id: entry.id)
                    deadLetter(DeadLetter(
                        key: key, group: group, id: entry.id, deliveryCount: count - 1, reason: .maxDeliveries,
                        lastError: lastError ?? "not acknowledged within the visibility timeout",
                        publishedAt: publishedAt, payload: payload
                    ))
                case .payload(let payload):
                    messages.append(MessageQueueMessage(
                        key: key, group: group, payload: payload, id: entry.id, publishedAt: publishedAt,
                        deliveryCount: count, receipt: DeliveryReceipt(primary: entry.milliseconds, secondary: entry.sequence),
                        acknowledger: self
                    ))
                }
            }
        }
        if bufferIndex >= buffer.count {
            buffer = messages
            bufferIndex = 0
        } else {
            buffer.append(contentsOf: messages)
        }
        bufferFetchedAt = fetchedAt
    }

    /// Delivery counts of claimed entries, from `XPENDING <stream> <group> <first> <last> <n> <consumer>`.
    private func deliveryCounts(_ batches: [StreamBatch]) async throws -> [String: Int] {
        guard let connection else { return [:] }
        var command = RESPCommand()
        for batch in batches {
            command.append(["XPENDING", batch.stream, group.name, batch.entries[0].id, batch.entries[batch.entries.count - 1].id, String(batch.entries.count), consumerName])
        }
        var counts: [String: Int] = [:]
        for reply in try await connection.values(command) {
            for row in reply.elements ?? [] {
                guard let fields = row.elements, fields.count == 4, let id = fields[0].text, let count = fields[3].integer else { continue }
                counts[id] = Int(count)
            }
        }
        return counts
    }

    // MARK: Retention

    /// Trims, in each stream this iterator acknowledged entries of, what every group of the
    /// stream has acknowledged: `XTRIM <stream> MINID <bound>`, where a group's bound is its
    /// oldest pending entry, or the entry after its last delivered one when nothing is pending.
    /// Entries some group has not read or not acknowledged are never trimmed.
    private func trimAcknowledged(on connection: RedisConnection) async throws {
        let keys = acks.withLock { buffer in
            defer { buffer.acknowledgedKeys.removeAll() }
            return buffer.acknowledgedKeys
        }
        for key in keys.sorted() {
            let stream = backend.names.streamName(key)
            let groups = (try await connection.value("XINFO", "GROUPS", stream).elements ?? []).map(\.fields)
            guard !groups.isEmpty else { continue }
            var bound: (UInt64, UInt64)?
            for fields in groups {
                guard let name = fields["name"]?.text, let pending = fields["pending"]?.integer,
                      let lastDelivered = fields["last-delivered-id"]?.text.flatMap(StreamEntry.parseID)
                else { bound = nil; break }
                var groupBound = (lastDelivered.0, lastDelivered.1 &+ 1)
                if pending > 0 {
                    let summary = try await connection.value("XPENDING", stream, name).elements ?? []
                    guard summary.count >= 2, let oldest = summary[1].text.flatMap(StreamEntry.parseID) else { bound = nil; break }
                    groupBound = oldest
                }
                if let current = bound, current < groupBound { continue }
                bound = groupBound
            }
            guard let bound, bound > (0, 0) else { continue }
            _ = try await connection.value("XTRIM", stream, "MINID", "\(bound.0)-\(bound.1)")
        }
    }

    // MARK: Ending

    /// Gives back what was fetched and not handed out, and closes the blocking connection.
    private func finish() async {
        guard !finished else { return }
        finished = true
        releaseUndelivered()
        if let connection { await backend.closeConsumerConnection(connection) }
    }

    /// `XCLAIM … IDLE <visibility timeout> RETRYCOUNT <count − 1> JUSTID` for every buffered
    /// message: any member's next claim takes it at once, and the delivery that never reached
    /// the application does not count.
    private func releaseUndelivered() {
        guard bufferIndex < buffer.count else { return }
        let idle = String(Self.milliseconds(visibilityTimeout))
        var command = RESPCommand()
        for message in buffer[bufferIndex...] {
            command.append([
                "XCLAIM", backend.names.streamName(message.key), group.name, consumerName, "0", message.id,
                "IDLE", idle, "RETRYCOUNT", String(message.deliveryCount - 1), "JUSTID",
            ])
        }
        buffer = []
        bufferIndex = 0
        backend.commands.enqueue(command, handler: LoggingHandler(logger: logger, action: "release undelivered messages"))
    }

    // MARK: MessageAcknowledger

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
        if message.deliveryCount >= backend.configuration.maxDeliveries {
            let letter = DeadLetter(
                key: message.key, group: group, id: message.id, deliveryCount: message.deliveryCount, reason: .maxDeliveries,
                lastError: reason, publishedAt: message.publishedAt, payload: message.payload
            )
            try await backend.send(deadLetterCommand(letter), for: "XADD")
            return
        }
        if let reason { backend.lastErrors.record(reason, stream: stream, group: group, id: message.id) }
        let idle = Self.milliseconds(max(.zero, visibilityTimeout - retryAfter))
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

    /// One `XACK <stream> <group> <id>…` per key for everything queued; runs on the command thread.
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
            var arguments = [Array("XACK".utf8), backend.names.stream(key), Array(group.name.utf8)]
            arguments.reserveCapacity(3 + end - start)
            for index in start..<end { arguments.append(Array(entries[index].id.utf8)) }
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
        command.appendXADD(stream: backend.names.stream(letter.key.deadLetterKey), json: try letter.envelope.jsonBytes(), maxLength: nil)
        command.append(["XACK", backend.names.streamName(letter.key), letter.group.name, letter.id])
        return command
    }

    private func deadLetter(_ letter: DeadLetter) {
        do {
            backend.commands.enqueue(try deadLetterCommand(letter), handler: LoggingHandler(logger: logger, action: "dead-letter"))
        } catch {
            logger.error("cannot encode a dead letter", metadata: ["key": "\(letter.key)", "id": "\(letter.id)", "error": "\(error.message)"])
        }
    }

    // MARK: Helpers

    private func pause(_ duration: Duration) async throws {
        try await Task.sleep(for: duration)
    }

    private func warnRateLimited(_ text: Logger.Message, error: MessageQueueError) {
        let now = ContinuousClock.now
        if let lastWarning, now - lastWarning < .seconds(10) { return }
        lastWarning = now
        logger.warning(text, metadata: ["group": "\(group)", "consumer": "\(consumerName)", "error": "\(error.message)"])
    }

    static func milliseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return seconds * 1000 + attoseconds / 1_000_000_000_000_000
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
