import AbstractBackend
import Foundation
import Logging
import Synchronization

/// Appends published messages on a thread of its own, with group commit: everything queued while
/// the previous write and sync ran goes out in one write per key and one `fdatasync` per file,
/// and only then are its publishers resumed (under ``FileSpoolConfiguration/FsyncPolicy/always``).
///
/// Under ``FileSpoolConfiguration/FsyncPolicy/never`` a publisher does not wait: its request is
/// queued and `append` returns, as long as less than ``unwrittenLimit`` bytes are queued unwritten;
/// past that it waits for the write like the other policies, so the writer's backlog (what a crash
/// of this process could lose) stays bounded. The queue is drained by ``close()`` and at process
/// exit.
///
/// A failed `fdatasync` is fatal for this writer: the kernel may have dropped the dirty pages, so
/// retrying could report data durable that is not. So is a failed write of a request whose
/// publisher has already returned, since those messages are lost. Every later publish fails with
/// the original error until the backend is reopened.
final class SpoolWriter: Sendable {
    private struct Request {
        /// One message (a single `publish`, without an array of its own) or several.
        enum Messages {
            case one(SegmentLog.Entry)
            case many([SegmentLog.Entry])
        }
        var key: MessageQueueKey
        var messages: Messages
        /// The waiting publisher; `nil` when it returned on queueing (`never`).
        var continuation: UnsafeContinuation<MessageQueueError?, Never>?

        func append(to entries: inout [SegmentLog.Entry]) {
            switch messages {
            case .one(let entry): entries.append(entry)
            case .many(let many): entries.append(contentsOf: many)
            }
        }

        var count: Int {
            switch messages {
            case .one: 1
            case .many(let many): many.count
            }
        }

        /// The bytes of JSON the request holds, which is what counts against ``unwrittenLimit``.
        var size: Int {
            switch messages {
            case .one(let entry): entry.json.count
            case .many(let many): many.reduce(0) { $0 + $1.json.count }
            }
        }
    }

    /// What the writer thread is doing, as far as publishers need to know to wake it.
    private enum Rest: UInt8 {
        case awake
        /// Letting publishes that do not wait accumulate (`never`); only a backlog near
        /// ``unwrittenLimit``, a publisher that waits or `close` wakes it.
        case napping
        /// Nothing to do: any publish wakes it.
        case sleeping
    }

    private struct Queue {
        var requests: [Request] = []
        /// Whether a queued request has a publisher waiting for it.
        var hasWaiter = false
        var closed = false
        /// Bytes queued by publishers that did not wait, and not yet written.
        var unwrittenBytes = 0
        /// Set when the writer fails for good; later publishes fail with it at once.
        var failure: MessageQueueError?
    }

    private let configuration: FileSpoolConfiguration
    private let directories: KeyDirectories
    private let counters: SpoolCounters
    private let logger: Logger
    private let queue = Mutex(Queue())
    private let wakeup = NSCondition()
    /// Whether the thread waits on `wakeup` (a ``Rest``): only then does `append` signal it.
    private let rest = Atomic<UInt8>(Rest.awake.rawValue)
    private let finished = Atomic<Bool>(false)
    // The writer thread's own state.
    private nonisolated(unsafe) var logs: [MessageQueueKey: SegmentLog] = [:]
    private nonisolated(unsafe) var unsynced: Set<MessageQueueKey> = []
    private nonisolated(unsafe) var lastSync = ContinuousClock.now
    private nonisolated(unsafe) var fatal: MessageQueueError?
    /// How many requests the previous batch completed: under `always`, their publishers are
    /// about to publish again, and waiting a moment for them halves the number of syncs.
    private nonisolated(unsafe) var lastBatchSize = 0
    /// Emptied arrays of the previous batch, kept for the next one: a busy writer would otherwise
    /// allocate (and fault in) fresh ones for every batch.
    private nonisolated(unsafe) var spareRequests: [Request] = []
    private nonisolated(unsafe) var spareEntries: [SegmentLog.Entry] = []

    /// The longest the writer waits for resumed publishers before writing a smaller batch.
    static let gatherTime = Duration.microseconds(200)
    /// How long an idle thread watches for work before it sleeps.
    static let spinTime = Duration.microseconds(50)
    /// Under `never`, publishers return without waiting while less than this many bytes of JSON
    /// are queued unwritten (1 MiB: a few milliseconds of writing at full speed).
    static let unwrittenLimit = 1 << 20
    /// Under `never`, how long the writer lets publishes accumulate before it writes them.
    static let napTime = Duration.milliseconds(1)
    /// How long the exit handler waits for a writer to drain its queue.
    static let exitDrainTime = Duration.seconds(10)

    /// Bumped after every write, so this process's idle consumers look again at once.
    let appended = Atomic<Int>(0)

    init(configuration: FileSpoolConfiguration, directories: KeyDirectories, counters: SpoolCounters, logger: Logger) {
        self.configuration = configuration
        self.directories = directories
        self.counters = counters
        self.logger = logger
        let thread = Thread { [self] in run() }
        thread.name = "abe-spool-writer"
        thread.start()
        if configuration.fsync == .never { SpoolWriterRegistry.shared.add(self) }
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
        if configuration.fsync == .never {
            let request = Request(key: key, messages: messages, continuation: nil)
            let size = request.size
            let queued = try queue.withLock { queue throws(MessageQueueError) -> Bool? in
                if queue.closed { throw .closed(FileSpoolBackend.providerName) }
                if let failure = queue.failure { throw failure }
                guard queue.unwrittenBytes + size <= Self.unwrittenLimit || queue.unwrittenBytes == 0 else { return nil }
                queue.unwrittenBytes += size
                queue.requests.append(request)
                return queue.unwrittenBytes >= Self.unwrittenLimit / 2
            }
            if let urgent = queued {
                switch Rest(rawValue: rest.load(ordering: .sequentiallyConsistent)) {
                case .sleeping: wake()
                case .napping where urgent: wake()
                default: break
                }
                return
            }
        }
        let failure = await withUnsafeContinuation { (continuation: UnsafeContinuation<MessageQueueError?, Never>) in
            let refusal = queue.withLock { queue -> MessageQueueError? in
                if queue.closed { return .closed(FileSpoolBackend.providerName) }
                if let failure = queue.failure { return failure }
                queue.requests.append(Request(key: key, messages: messages, continuation: continuation))
                queue.hasWaiter = true
                return nil
            }
            if let refusal {
                continuation.resume(returning: refusal)
            } else if rest.load(ordering: .sequentiallyConsistent) != Rest.awake.rawValue {
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
        SpoolWriterRegistry.shared.remove(self)
    }

    /// Blocks the calling thread until everything queued so far is written, or `timeout` passes:
    /// the exit handler's drain, for publishers that returned without waiting. The writer keeps
    /// running (other threads still run while exit handlers do).
    func drainBeforeExit(timeout: Duration) {
        let deadline = ContinuousClock.now + timeout
        wake()
        while queue.withLock({ $0.unwrittenBytes > 0 && $0.failure == nil }), !finished.load(ordering: .acquiring), ContinuousClock.now < deadline {
            usleep(200)
        }
    }

    private func wake() {
        wakeup.lock()
        wakeup.signal()
        wakeup.unlock()
    }

    // MARK: The writer thread

    private func run() {
        while var batch = takeBatch() {
            if !batch.isEmpty {
                write(batch)
                batch.removeAll(keepingCapacity: true)
                spareRequests = batch
            }
            syncIfDue(force: false)
        }
        syncIfDue(force: true)
        logs = [:]
        finished.store(true, ordering: .releasing)
    }

    /// Waits for requests (under `interval`, at most until the next sync is due); `nil` once
    /// closed and drained.
    private func takeBatch() -> [Request]? {
        switch configuration.fsync {
        case .always where lastBatchSize > 1: gather()
        case .never: nap()
        default: break
        }
        while true {
            // Swapped with the spare array, so that the queue holds the only reference to its
            // new array and publishers append in place.
            var taken = spareRequests
            spareRequests = []
            let closed = queue.withLock { queue -> Bool in
                if !queue.requests.isEmpty {
                    swap(&queue.requests, &taken)
                    queue.hasWaiter = false
                }
                return queue.closed
            }
            if !taken.isEmpty { return taken }
            spareRequests = taken
            if closed { return nil }
            // Publishers resumed by the last batch usually publish again within microseconds;
            // under `never` they were not waiting, so there is nothing to watch for.
            if configuration.fsync != .never, spin(for: Self.spinTime, until: { queue.withLock { !$0.requests.isEmpty || $0.closed } }) { continue }
            wakeup.lock()
            rest.store(Rest.sleeping.rawValue, ordering: .sequentiallyConsistent)
            defer {
                rest.store(Rest.awake.rawValue, ordering: .sequentiallyConsistent)
                wakeup.unlock()
            }
            if queue.withLock({ $0.requests.isEmpty && !$0.closed }) {
                if configuration.fsync == .interval, !unsynced.isEmpty {
                    let wait = configuration.fsyncInterval - (ContinuousClock.now - lastSync)
                    if wait > .zero {
                        _ = wakeup.wait(until: Date(timeIntervalSinceNow: wait.secondsValue))
                    }
                    return []
                }
                wakeup.wait()
            }
        }
    }

    /// Under `never`, waits up to ``napTime`` while publishers that do not wait queue more: a
    /// few large writes instead of one per publish, and the cores stay with the publishers.
    private func nap() {
        wakeup.lock()
        rest.store(Rest.napping.rawValue, ordering: .sequentiallyConsistent)
        defer {
            rest.store(Rest.awake.rawValue, ordering: .sequentiallyConsistent)
            wakeup.unlock()
        }
        if queue.withLock({ !$0.closed && !$0.hasWaiter && $0.unwrittenBytes < Self.unwrittenLimit / 2 }) {
            _ = wakeup.wait(until: Date(timeIntervalSinceNow: Self.napTime.secondsValue))
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
        if fatal != nil {
            finish(batch, failures: [:])
            return
        }
        // One append per key, in arrival order within each key.
        var failures: [Int: MessageQueueError] = [:]
        for (key, indices) in Self.groupedByKey(batch) {
            var entries = spareEntries
            spareEntries = []
            defer {
                entries.removeAll(keepingCapacity: true)
                spareEntries = entries
            }
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
        appended.add(1, ordering: .releasing)
        finish(batch, failures: failures)
    }

    /// Resumes the waiting publishers of `batch` with their outcome, and releases the bytes of
    /// those that did not wait. Messages of the latter that failed are lost: that is logged and
    /// counted, and makes the writer fail every later publish.
    private func finish(_ batch: [Request], failures: [Int: MessageQueueError]) {
        var released = 0
        var lost = 0
        var lostError: MessageQueueError?
        for (index, request) in batch.enumerated() {
            let failure = fatal ?? failures[index]
            if let continuation = request.continuation {
                continuation.resume(returning: failure)
                continue
            }
            released += request.size
            if let failure {
                lost += request.count
                lostError = lostError ?? failure
            }
        }
        if let lostError {
            counters.lostMessages.add(lost, ordering: .relaxed)
            logger.critical("spool write failed after publish returned (ABE_SPOOL_FSYNC=never); messages lost; refusing further publishes", metadata: ["messages": "\(lost)", "error": "\(lostError.message)"])
            if fatal == nil {
                fatal = MessageQueueError(.unavailable, "\(lost) message(s) published with ABE_SPOOL_FSYNC=never could not be written (\(lostError.message)) and are lost; the spool handle stops accepting messages; fix the cause and restart the process to reopen the spool")
            }
        }
        let failure = fatal
        if released > 0 || failure != nil {
            queue.withLock { queue in
                queue.unwrittenBytes -= released
                if queue.failure == nil { queue.failure = failure }
            }
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
                let failure = MessageQueueError(.unavailable, "fdatasync failed for key \(key) (\(error.message)); the spool handle stops accepting messages because written data may not be on disk; restart the process to reopen the spool")
                fatal = failure
                queue.withLock { $0.failure = failure }
                logger.critical("spool fdatasync failed; refusing further publishes", metadata: ["key": "\(key)", "error": "\(error.message)"])
                return
            }
        }
        unsynced.removeAll()
        lastSync = ContinuousClock.now
    }
}
