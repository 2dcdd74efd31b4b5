import AbstractBackend
import Foundation
import Logging
import Synchronization

/// Appends published messages on a thread of its own, with group commit: everything queued while
/// the previous write and sync ran goes out in one write per key and one `fdatasync` per file,
/// and only then are its publishers resumed (under ``FileSpoolConfiguration/FsyncPolicy/always``).
///
/// A failed `fdatasync` is fatal for this writer: the kernel may have dropped the dirty pages, so
/// retrying could report data durable that is not. Every later publish fails with the original
/// error until the backend is reopened.
final class SpoolWriter: Sendable {
    private struct Request {
        /// One message (a single `publish`, without an array of its own) or several.
        enum Messages {
            case one(SegmentLog.Entry)
            case many([SegmentLog.Entry])
        }
        var key: MessageQueueKey
        var messages: Messages
        var continuation: UnsafeContinuation<MessageQueueError?, Never>

        func append(to entries: inout [SegmentLog.Entry]) {
            switch messages {
            case .one(let entry): entries.append(entry)
            case .many(let many): entries.append(contentsOf: many)
            }
        }
    }

    private struct Queue {
        var requests: [Request] = []
        var closed = false
    }

    private let configuration: FileSpoolConfiguration
    private let directories: KeyDirectories
    private let counters: SpoolCounters
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wakeup = NSCondition()
    /// Whether the thread waits on `wakeup`: only then does `append` signal it.
    private let sleeping = Atomic<Bool>(false)
    private let finished = Atomic<Bool>(false)
    // The writer thread's own state.
    private nonisolated(unsafe) var logs: [MessageQueueKey: SegmentLog] = [:]
    private nonisolated(unsafe) var unsynced: Set<MessageQueueKey> = []
    private nonisolated(unsafe) var lastSync = ContinuousClock.now
    private nonisolated(unsafe) var fatal: MessageQueueError?
    /// How many requests the previous batch completed: under `always`, their publishers are
    /// about to publish again, and waiting a moment for them halves the number of syncs.
    private nonisolated(unsafe) var lastBatchSize = 0

    /// The longest the writer waits for resumed publishers before writing a smaller batch.
    static let gatherTime = Duration.microseconds(200)
    /// How long an idle thread watches for work before it sleeps.
    static let spinTime = Duration.microseconds(50)

    init(configuration: FileSpoolConfiguration, directories: KeyDirectories, counters: SpoolCounters, logger: Logger) {
        self.configuration = configuration
        self.directories = directories
        self.counters = counters
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "abe-spool-writer"
        thread.start()
    }

    /// Appends `entry` to `key`'s log; returns once it is written and, under `always`, synced.
    func append(_ entry: SegmentLog.Entry, to key: MessageQueueKey) async throws(MessageQueueError) {
        try await append(.one(entry), to: key)
    }

    /// Appends `entries` to `key`'s log; returns once they are written and, under `always`, synced.
    func append(_ entries: [SegmentLog.Entry], to key: MessageQueueKey) async throws(MessageQueueError) {
        try await append(.many(entries), to: key)
    }

    private func append(_ messages: Request.Messages, to key: MessageQueueKey) async throws(MessageQueueError) {
        let failure = await withUnsafeContinuation { (continuation: UnsafeContinuation<MessageQueueError?, Never>) in
            let accepted = queue.withLock { queue -> Bool in
                guard !queue.closed else { return false }
                queue.requests.append(Request(key: key, messages: messages, continuation: continuation))
                return true
            }
            if !accepted {
                continuation.resume(returning: .closed(FileSpoolBackend.providerName))
            } else if sleeping.load(ordering: .sequentiallyConsistent) {
                wake()
            }
        }
        if let failure { throw failure }
    }

    /// Writes and syncs what is queued, then ends the thread; later appends fail with `closed`.
    func close() async {
        queue.withLock { $0.closed = true }
        wake()
        while !finished.load(ordering: .acquiring) {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }

    private func wake() {
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    // MARK: The writer thread

    private func run() {
        while let batch = takeBatch() {
            if !batch.isEmpty { write(batch) }
            syncIfDue(force: false)
        }
        syncIfDue(force: true)
        logs = [:]
        finished.store(true, ordering: .releasing)
    }

    /// Waits for requests (under `interval`, at most until the next sync is due); `nil` once
    /// closed and drained.
    private func takeBatch() -> [Request]? {
        if configuration.fsync == .always, lastBatchSize > 1 { gather() }
        while true {
            let (batch, closed) = queue.withLock { queue in
                defer { queue.requests.removeAll(keepingCapacity: true) }
                return (queue.requests, queue.closed)
            }
            if !batch.isEmpty { return batch }
            if closed { return nil }
            // Publishers resumed by the last batch usually publish again within microseconds.
            if spin(for: Self.spinTime, until: { queue.withLock { !$0.requests.isEmpty || $0.closed } }) { continue }
            wakeup.lock()
            sleeping.store(true, ordering: .sequentiallyConsistent)
            defer {
                sleeping.store(false, ordering: .sequentiallyConsistent)
                wakeup.unlock()
            }
            if queue.withLock({ $0.requests.isEmpty && !$0.closed }) {
                if configuration.fsync == .interval, !unsynced.isEmpty {
                    let wait = configuration.fsyncInterval - (ContinuousClock.now - lastSync)
                    if wait > .zero {
                        _ = wakeup.wait(until: Date(timeIntervalSinceNow: Double(wait.components.attoseconds) / 1e18 + Double(wait.components.seconds)))
                    }
                    return []
                }
                wakeup.wait()
            }
        }
    }

    /// Yields the core until as many requests are queued as the previous batch completed, or
    /// ``gatherTime`` passes: group commit only pays when the group is large.
    private func gather() {
        let expected = lastBatchSize
        _ = spin(for: Self.gatherTime, until: { queue.withLock { $0.requests.count >= expected || $0.closed } })
    }

    private func write(_ batch: [Request]) {
        lastBatchSize = batch.count
        if let fatal {
            for request in batch { request.continuation.resume(returning: fatal) }
            return
        }
        // One append per key, in arrival order within each key.
        var failures: [Int: MessageQueueError] = [:]
        for (key, indices) in Self.groupedByKey(batch) {
            var entries: [SegmentLog.Entry] = []
            entries.reserveCapacity(indices.count)
            for index in indices { batch[index].append(to: &entries) }
            do throws(MessageQueueError) {
                let log = try self.log(for: key)
                _ = try log.append(entries)
                unsynced.insert(key)
            } catch {
                for index in indices { failures[index] = error }
            }
        }
        if configuration.fsync == .always { syncIfDue(force: true) }
        for (index, request) in batch.enumerated() {
            request.continuation.resume(returning: fatal ?? failures[index])
        }
    }

    /// The requests' indices per key, keys in order of first arrival. Most batches hold one key,
    /// which needs no dictionary.
    private static func groupedByKey(_ batch: [Request]) -> [(key: MessageQueueKey, indices: [Int])] {
        guard let first = batch.first?.key else { return [] }
        if batch.allSatisfy({ $0.key == first }) { return [(first, Array(batch.indices))] }
        var groups: [(key: MessageQueueKey, indices: [Int])] = []
        var position: [MessageQueueKey: Int] = [:]
        for (index, request) in batch.enumerated() {
            if let existing = position[request.key] {
                groups[existing].indices.append(index)
            } else {
                position[request.key] = groups.count
                groups.append((request.key, [index]))
            }
        }
        return groups
    }

    private func log(for key: MessageQueueKey) throws(MessageQueueError) -> SegmentLog {
        if let log = logs[key] { return log }
        let log = try SegmentLog(directory: try directories.directory(for: key), segmentLimit: configuration.segmentSize, counters: counters, logger: logger)
        logs[key] = log
        return log
    }

    /// Syncs every log written since the last sync: always when `force`, otherwise when the
    /// `interval` policy says it is time. `never` syncs only on close.
    private func syncIfDue(force: Bool) {
        guard !unsynced.isEmpty, fatal == nil else { return }
        switch configuration.fsync {
        case .never where !force, .always where !force:
            return
        case .interval where !force && ContinuousClock.now - lastSync < configuration.fsyncInterval:
            return
        default:
            break
        }
        for key in unsynced {
            do throws(MessageQueueError) {
                try logs[key]?.sync()
            } catch {
                fatal = MessageQueueError(.unavailable, "fdatasync failed for key \(key) (\(error.message)); the spool handle stops accepting messages because written data may not be on disk; restart the process to reopen the spool")
                logger.critical("spool fdatasync failed; refusing further publishes", metadata: ["key": "\(key)", "error": "\(error.message)"])
                return
            }
        }
        unsynced.removeAll()
        lastSync = ContinuousClock.now
    }
}
