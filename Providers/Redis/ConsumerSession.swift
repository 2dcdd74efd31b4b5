import AbstractBackend
import Foundation
import Logging
import Synchronization

/// The state of one consuming iterator: its streams, its blocking connection, the messages it
/// fetched and not yet handed out, and the acknowledgements waiting to be sent.
///
/// The iteration state is touched only by the task that iterates (one at a time, as
/// `AsyncIteratorProtocol` requires). Messages point at the session's ``DeliveryAcknowledger``,
/// not at the session, so buffered messages do not keep an abandoned iterator alive.
final class ConsumerSession: @unchecked Sendable {
    /// Entries fetched per read.
    static let prefetch = 256
    /// Reads in flight besides the one being handed out: with two, the server prepares one batch
    /// while the connection thread decodes another. An iterator holds at most
    /// `prefetch × (readAheadDepth + 1)` undelivered entries.
    static let readAheadDepth = 2
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
    /// Reads sent ahead while the buffer is handed out, oldest first (at most ``readAheadDepth``).
    private var readAhead: [StreamReader] = []
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

    /// Records `ack`/`nack` of this iterator's messages.
    private let acknowledger: DeliveryAcknowledger
    // Shared with the cancellation handler.
    private let interruptRequested = Atomic<Bool>(false)

    init(backend: RedisBackend, keys: [MessageQueueKey]?, group: ConsumerGroup) {
        self.backend = backend
        self.group = group
        self.explicitKeys = keys
        self.logger = backend.logger
        self.consumerName = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)-\(ConsumerSession.nextSerial())"
        self.acknowledger = DeliveryAcknowledger(backend: backend, group: group, consumerName: consumerName)
        if let keys {
            for key in Set(keys).sorted() { addStream(key) }
        }
    }

    deinit {
        // An iterator dropped without being cancelled: give back what it fetched, close its connection.
        if !finished, let connection {
            releaseUndelivered()
            let readAhead = readAhead
            let names = streams.filter(\.groupReady).map(\.name)
            Task { [backend, group, consumerName] in
                for reader in readAhead {
                    if case .success(let batches) = await reader.value() {
                        Self.release(batches.flatMap { batch in batch.entries.map { (batch.stream, $0.id, 1) } }, backend: backend, group: group, consumer: consumerName)
                    }
                }
                await backend.closeConsumerConnection(connection)
                Self.removeConsumerIfIdle(streams: names, backend: backend, group: group, consumer: consumerName)
            }
        }
    }

    private static let serial = Atomic<Int>(0)
    private static func nextSerial() -> Int { serial.add(1, ordering: .relaxed).newValue }

    private var visibilityTimeout: Duration { backend.configuration.visibilityTimeout }
    private var claimInterval: Duration {
        min(max(visibilityTimeout / 4, .milliseconds(10)), .seconds(1))
    }

    // MARK: Iteration

    /// The next fetched message, if one is buffered and neither the task is cancelled nor the
    /// backend closed.
    func nextBuffered() -> MessageQueueMessage? {
        while bufferIndex < buffer.count, !Task.isCancelled, !backend.isClosed {
            let message = buffer[bufferIndex]
            bufferIndex += 1
            // Held past the visibility timeout: another member may have claimed it already.
            if ContinuousClock.now - bufferFetchedAt < visibilityTimeout { return message }
        }
        return nil
    }

    func next() async throws -> MessageQueueMessage? {
        while true {
            if Task.isCancelled {
                await finish()
                throw CancellationError()
            }
            if let message = nextBuffered() { return message }
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
    /// discovery is due. Cancellation interrupts the wait with `CLIENT UNBLOCK`. A read that
    /// returned entries sends the next one (without waiting) at once, so the server and the
    /// connection thread prepare the next batch while the application works through this one.
    private func readNew(on connection: RedisConnection) async throws {
        let reader: StreamReader
        if !readAhead.isEmpty {
            reader = readAhead.removeFirst()
        } else {
            let now = ContinuousClock.now
            var wait = min(backend.configuration.blockTime, nextClaim - now)
            if explicitKeys == nil { wait = min(wait, nextDiscovery - now) }
            reader = startRead(on: connection, blockMilliseconds: max(1, wait.wholeMilliseconds))
        }
        let result = await withTaskCancellationHandler {
            await reader.value()
        } onCancel: {
            self.interrupt(reader, on: connection)
        }
        switch result {
        case .success(let batches):
            if batches.contains(where: { !$0.entries.isEmpty }) {
                while readAhead.count < Self.readAheadDepth {
                    readAhead.append(startRead(on: connection, blockMilliseconds: nil))
                }
            }
            try await deliver(batches, claimed: false)
        case .failure(.connection(let error)):
            throw error
        case .failure(.reply(let message)):
            try handleReadError(message)
        }
    }

    /// Sends `XREADGROUP` for every stream; `blockMilliseconds` `nil` for a read that does not wait.
    private func startRead(on connection: RedisConnection, blockMilliseconds: Int64?) -> StreamReader {
        let names = streams.map(\.name)
        let reader = StreamReader(kind: .readGroup, streams: names)
        interruptRequested.store(false, ordering: .relaxed)
        let group = group.name
        let consumer = consumerName
        connection.enqueueDeferred({ [self] in
            var arguments = ["XREADGROUP", "GROUP", group, consumer, "COUNT", String(Self.prefetch)]
            // Cancelled before the read went out: do not wait at all.
            if let blockMilliseconds, !interruptRequested.load(ordering: .acquiring) {
                arguments += ["BLOCK", String(blockMilliseconds)]
            }
            arguments.append("STREAMS")
            arguments += names
            arguments += Array(repeating: ">", count: names.count)
            var command = RESPCommand()
            command.append(arguments)
            return command
        }, handler: reader)
        return reader
    }

    /// Ends a blocked read early: `CLIENT UNBLOCK <id> TIMEOUT` from the command connection,
    /// repeated until the read is over (the read may not have reached the server yet).
    private func interrupt(_ reader: StreamReader, on connection: RedisConnection) {
        interruptRequested.store(true, ordering: .releasing)
        let commands = backend.commands
        let block = backend.configuration.blockTime
        Task {
            let deadline = ContinuousClock.now + block + .milliseconds(200)
            while !reader.isDone, ContinuousClock.now < deadline {
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
        let timeout = String(visibilityTimeout.wholeMilliseconds)
        var command = RESPCommand()
        for stream in streams {
            command.append(["XAUTOCLAIM", stream.name, group.name, consumerName, timeout, stream.claimCursor, "COUNT", String(Self.prefetch)])
        }
        let reader = StreamReader(kind: .autoClaim, streams: streams.map(\.name))
        connection.enqueue(command, handler: reader)
        let result = await reader.value()
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
            let metrics = backend.metrics.delivery(of: key, in: group)
            for entry in batch.entries {
                let count = claimed ? (counts[entry.id] ?? 2) : 1
                let publishedAt = Date(timeIntervalSince1970: Double(entry.milliseconds) / 1000)
                switch entry.payload() {
                case .failure(let invalid):
                    logger.warning("redis entry has no valid payload; moving it to the dead letter", metadata: ["key": "\(key)", "group": "\(group)", "message-id": "\(entry.id)", "reason": "\(invalid.reason)"])
                    acknowledger.deadLetter(DeadLetter(
                        key: key, group: group, id: entry.id, deliveryCount: count, reason: .invalidPayload,
                        lastError: invalid.reason, publishedAt: publishedAt, payload: ["raw": .string(invalid.raw)]
                    ))
                case .success(let payload) where count > backend.configuration.maxDeliveries:
                    let lastError = backend.lastErrors.take(stream: batch.stream, group: group, id: entry.id)
                    acknowledger.deadLetter(DeadLetter(
                        key: key, group: group, id: entry.id, deliveryCount: count - 1, reason: .maxDeliveries,
                        lastError: lastError ?? "not acknowledged within the visibility timeout",
                        publishedAt: publishedAt, payload: payload
                    ))
                case .success(let payload):
                    metrics.delivered(deliveryCount: count)
                    messages.append(MessageQueueMessage(
                        key: key, group: group, payload: payload, id: entry.id, publishedAt: publishedAt,
                        deliveryCount: count, receipt: DeliveryReceipt(primary: entry.milliseconds, secondary: entry.sequence),
                        acknowledger: acknowledger
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
        let keys = acknowledger.takeAcknowledgedKeys()
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
        // Reads sent ahead do not wait on the server, so they are back within a round trip.
        for pending in readAhead {
            if case .success(let batches) = await pending.value() {
                Self.release(batches.flatMap { batch in batch.entries.map { (batch.stream, $0.id, 1) } }, backend: backend, group: group, consumer: consumerName)
            }
        }
        readAhead = []
        if let connection { await backend.closeConsumerConnection(connection) }
        Self.removeConsumerIfIdle(streams: streams.filter(\.groupReady).map(\.name), backend: backend, group: group, consumer: consumerName)
    }

    /// `XGROUP DELCONSUMER` in every stream where this consumer has nothing pending. Where it
    /// still has entries (held when it stopped, or released to be claimed) it stays, since
    /// deleting a consumer drops its pending entries; members that claim them leave it empty.
    private static func removeConsumerIfIdle(streams: [String], backend: RedisBackend, group: ConsumerGroup, consumer: String) {
        guard !streams.isEmpty, !backend.isClosed else { return }
        Task {
            for stream in streams {
                // Runs after the releases queued before it on the same connection.
                guard let pending = try? await backend.commands.value("XPENDING", stream, group.name, "-", "+", "1", consumer),
                      pending.elements?.isEmpty == true
                else { continue }
                _ = try? await backend.commands.value("XGROUP", "DELCONSUMER", stream, group.name, consumer)
            }
        }
    }

    /// Releases every buffered message (see ``release(_:backend:group:consumer:)``).
    private func releaseUndelivered() {
        guard bufferIndex < buffer.count else { return }
        let entries = buffer[bufferIndex...].map { (backend.names.streamName($0.key), $0.id, $0.deliveryCount) }
        buffer = []
        bufferIndex = 0
        Self.release(entries, backend: backend, group: group, consumer: consumerName)
    }

    /// `XCLAIM … IDLE <visibility timeout> RETRYCOUNT <count − 1> JUSTID` for entries fetched and
    /// never handed to the application: any member's next claim takes them at once, and the
    /// delivery that never happened does not count.
    private static func release(_ entries: [(stream: String, id: String, deliveryCount: Int)], backend: RedisBackend, group: ConsumerGroup, consumer: String) {
        guard !entries.isEmpty else { return }
        let idle = String(backend.configuration.visibilityTimeout.wholeMilliseconds)
        var command = RESPCommand()
        for entry in entries {
            command.append([
                "XCLAIM", entry.stream, group.name, consumer, "0", entry.id,
                "IDLE", idle, "RETRYCOUNT", String(entry.deliveryCount - 1), "JUSTID",
            ])
        }
        backend.commands.enqueue(command, handler: LoggingHandler(logger: backend.logger, action: "release undelivered messages"))
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

}
