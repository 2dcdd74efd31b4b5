import AbstractBackend

/// Publishes to a file spool and returns each message's id (its sequence in its key's log), for
/// `abe publish --print-ids`: ``FileSpoolBackend/publish(_:)`` shares one write and sync among
/// concurrent publishers and returns nothing.
///
/// It appends to each key's ``SegmentLog`` under the log's `flock`, exactly as another process
/// sharing the spool would, on a thread of its own; unless the fsync policy is `never`, a batch is
/// synced before ``publish(_:)`` returns.
package final class SpoolIDPublisher: Sendable {
    private let backend: FileSpoolBackend
    private let thread = OwnedThread(name: "abe-spool-ids")
    /// Each key's log, opened once (opening scans the newest segment). Used only on `thread`.
    private nonisolated(unsafe) var logs: [MessageQueueKey: SegmentLog] = [:]

    /// A publisher writing to `backend`'s spool.
    package init(backend: FileSpoolBackend) {
        self.backend = backend
    }

    deinit {
        thread.stop()
    }

    /// Appends `batch` (per key in array order) and returns the id of each message, in order.
    /// Every payload is encoded before anything is written, so an invalid one publishes nothing.
    package func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws(MessageQueueError) -> [String] {
        guard !backend.isClosed else { throw .closed(FileSpoolBackend.providerName) }
        let now = ConsumerFiles.now()
        let entries = try batch.map { item throws(MessageQueueError) in
            (key: item.key, entry: SegmentLog.Entry(json: try item.payload.jsonBytes(), publishedAtMilliseconds: now))
        }
        let sync = backend.configuration.fsync != .never
        let ids = try await thread.run { () throws(MessageQueueError) -> [String] in
            var ids: [String] = []
            var written: [SegmentLog] = []
            var start = 0
            while start < entries.count {
                let key = entries[start].key
                var end = start + 1
                while end < entries.count && entries[end].key == key { end += 1 }
                let log = try self.log(for: key)
                ids += try log.append(entries[start..<end].map(\.entry)).map { String($0) }
                if !written.contains(where: { $0 === log }) { written.append(log) }
                start = end
            }
            if sync {
                for log in written { try log.sync() }
            }
            return ids
        }
        backend.noteAppended()
        return ids
    }

    private func log(for key: MessageQueueKey) throws(MessageQueueError) -> SegmentLog {
        if let log = logs[key] { return log }
        let log = try SegmentLog(
            directory: try backend.directories.directory(for: key), segmentLimit: backend.configuration.segmentSize,
            counters: backend.counters, logger: backend.logger
        )
        logs[key] = log
        return log
    }
}
