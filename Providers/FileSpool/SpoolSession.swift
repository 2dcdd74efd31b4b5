import AbstractBackend
import Foundation
import Logging
import Synchronization

/// One consuming iterator: claims batches of due messages through the group's journal, hands
/// them out, and gives back what it fetched and did not hand out when it stops.
///
/// The iteration state belongs to the iterating task; file work runs on the iterator's own
/// ``OwnedThread``. Messages point at its ``SpoolAcknowledger``, not at the session, so buffered
/// messages do not keep an abandoned iterator alive.
final class SpoolSession: @unchecked Sendable {
    /// How long an idle consumer waits between looks at the files, for messages other processes
    /// publish; this process's own publishes wake it sooner.
    static let pollInterval = Duration.milliseconds(50)
    static let discoveryInterval = Duration.milliseconds(500)

    private let backend: FileSpoolBackend
    private let group: ConsumerGroup
    private let explicitKeys: [MessageQueueKey]?
    private let thread: OwnedThread
    private let files: ConsumerFiles
    private let acknowledger: SpoolAcknowledger
    private var keys: [MessageQueueKey] = []
    private var rotation = 0
    private var nextDiscovery = ContinuousClock.now
    private var buffer: [MessageQueueMessage] = []
    private var bufferIndex = 0
    private var finished = false

    private static let serial = Atomic<UInt64>(0)

    init(backend: FileSpoolBackend, keys: [MessageQueueKey]?, group: ConsumerGroup) {
        self.backend = backend
        self.group = group
        self.explicitKeys = keys.map { Array(Set($0)).sorted() }
        self.keys = explicitKeys ?? []
        thread = OwnedThread(name: "abe-spool-consumer")
        // Unique across the processes sharing the spool: the pid, and a counter within it.
        let owner = UInt64(UInt32(bitPattern: ProcessInfo.processInfo.processIdentifier)) << 32 | Self.serial.add(1, ordering: .relaxed).newValue
        files = ConsumerFiles(configuration: backend.configuration, directories: backend.directories, group: group, owner: owner, counters: backend.counters, logger: backend.logger)
        acknowledger = SpoolAcknowledger(backend: backend, files: files, thread: thread)
    }

    deinit {
        if !finished { returnUndelivered() }
    }

    /// The next buffered message, if any and the task is not cancelled.
    func nextBuffered() -> MessageQueueMessage? {
        guard bufferIndex < buffer.count, !Task.isCancelled, !backend.isClosed else { return nil }
        defer { bufferIndex += 1 }
        return buffer[bufferIndex]
    }

    func next() async throws -> MessageQueueMessage? {
        while true {
            if Task.isCancelled {
                finish()
                throw CancellationError()
            }
            if let message = nextBuffered() { return message }
            if finished { return nil }
            if backend.isClosed {
                finish()
                throw MessageQueueError.closed(FileSpoolBackend.providerName)
            }
            do {
                try await fill()
            } catch is CancellationError {
                finish()
                throw CancellationError()
            } catch {
                finish()
                throw error
            }
        }
    }

    /// Claims due messages; when there are none, waits for a publish, a deadline or the next poll.
    private func fill() async throws {
        if explicitKeys == nil, ContinuousClock.now >= nextDiscovery {
            nextDiscovery = ContinuousClock.now + Self.discoveryInterval
            let directories = backend.directories
            keys = await thread.run { directories.allKeys().filter { !$0.isDeadLetter } }
        }
        let generation = backend.appendGeneration
        let (keys, rotation, limit, files) = (self.keys, self.rotation, backend.configuration.prefetch, self.files)
        let claim = try await thread.run { () throws(MessageQueueError) in try files.claim(keys: keys, rotation: rotation, limit: limit) }
        self.rotation = keys.isEmpty ? 0 : (rotation + 1) % keys.count
        for exhausted in claim.exhausted {
            try await acknowledger.deadLetter(exhausted, reason: .maxDeliveries, lastError: exhausted.lastError ?? "not acknowledged within the visibility timeout", deliveries: exhausted.deliveryCount - 1)
        }
        var messages: [MessageQueueMessage] = []
        messages.reserveCapacity(claim.deliveries.count)
        for claimed in claim.deliveries {
            let publishedAt = Date(timeIntervalSince1970: Double(claimed.publishedAtMilliseconds) / 1000)
            do {
                let payload = try MessageQueuePayload(jsonBytes: claimed.payload)
                backend.metrics.delivery(of: claimed.key, in: group).delivered(deliveryCount: claimed.deliveryCount)
                messages.append(MessageQueueMessage(
                    key: claimed.key, group: group, payload: payload, id: String(claimed.sequence), publishedAt: publishedAt,
                    deliveryCount: claimed.deliveryCount, receipt: DeliveryReceipt(primary: claimed.sequence, secondary: UInt64(claimed.deliveryCount)),
                    acknowledger: acknowledger
                ))
            } catch {
                backend.logger.warning("spool record holds no valid payload; moving it to the dead letter", metadata: ["key": "\(claimed.key)", "group": "\(group)", "message-id": "\(claimed.sequence)", "reason": "\(error.message)"])
                var invalid = claimed
                invalid.payload = []
                try await acknowledger.deadLetter(invalid, reason: .invalidPayload, lastError: error.message, deliveries: claimed.deliveryCount, raw: String(decoding: claimed.payload, as: UTF8.self))
            }
        }
        if !messages.isEmpty {
            buffer = messages
            bufferIndex = 0
            return
        }
        if !claim.exhausted.isEmpty || !claim.deliveries.isEmpty { return }
        try await waitForWork(since: generation, deadline: claim.nextDeadline)
    }

    /// Sleeps until this process publishes, the earliest deadline passes, or the poll interval
    /// ends — in small steps, so that cancellation and local publishes are noticed quickly.
    private func waitForWork(since generation: Int, deadline: Int64?) async throws {
        var remaining = Self.pollInterval
        if let deadline {
            let untilDeadline = Duration.milliseconds(max(1, deadline - ConsumerFiles.now()))
            remaining = min(remaining, untilDeadline)
        }
        let step = Duration.milliseconds(5)
        while remaining > .zero, backend.appendGeneration == generation, !backend.isClosed {
            try await Task.sleep(for: min(step, remaining))
            remaining -= step
        }
    }

    /// Gives back the buffered messages. The thread lives on while messages handed out can still
    /// be acknowledged: ``SpoolAcknowledger`` stops it when the last of them is gone.
    private func finish() {
        guard !finished else { return }
        finished = true
        returnUndelivered()
    }

    /// `returned` events for every message fetched and not handed out: due again at once for
    /// any member, without counting a delivery.
    private func returnUndelivered() {
        guard bufferIndex < buffer.count else { return }
        let undelivered = buffer[bufferIndex...].map { ($0.key, $0.receipt.primary) }
        buffer = []
        bufferIndex = 0
        let files = self.files
        let logger = backend.logger
        thread.submit {
            for (key, sequence) in undelivered {
                do throws(MessageQueueError) {
                    try files.record([.returned(sequence: sequence)], for: key)
                } catch {
                    logger.warning("spool could not give back a fetched message; it is delivered again after the visibility timeout", metadata: ["key": "\(key)", "error": "\(error.message)"])
                }
            }
        }
    }
}
