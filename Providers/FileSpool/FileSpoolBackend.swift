import AbstractBackend
import Foundation
import Logging
import Synchronization

/// A durable queue on one host, in a directory that any number of processes share, with no
/// server to run.
///
/// Each key is a log of checksummed segment files; each group's state is a journal that every
/// consuming process replays. Publishing returns once the record is written and, under
/// `ABE_SPOOL_FSYNC=always` (the default), on disk — concurrent publishers share one
/// `fdatasync`; under `never` it returns once the record is queued for writing (see
/// ``FileSpoolConfiguration/FsyncPolicy/never`` for what that can lose). The on-disk format is in
/// docs/file-spool-format.md.
///
/// ```swift
/// let backend = try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: "/var/spool/orders"))
/// try await backend.publish(["order": 42], to: MessageQueueKey("orders"))
/// for try await message in backend.consume(group: nil) {
///     try await handle(message.payload)
///     try await message.ack()
/// }
/// ```
public final class FileSpoolBackend: MessageQueueBackend {
    /// `file-spool`.
    public static let providerName = "file-spool"

    /// The descriptor to pass to `loadBackend(providers:)`; configured when `ABE_SPOOL_DIR` is set.
    public static let provider = MessageQueueProvider(
        FileSpoolBackend.self,
        aliases: ["spool", "file"],
        product: "AbstractBackendFileSpool",
        summary: "a durable queue in a local directory shared by the processes of one host; no server",
        environmentVariables: FileSpoolConfiguration.variables,
        configuringVariables: [FileSpoolConfiguration.Variable.directory]
    )

    /// The options this backend runs with.
    public let configuration: FileSpoolConfiguration
    let logger: Logger
    let directories: KeyDirectories
    let counters = SpoolCounters()
    let metrics = MessageQueueMetrics(provider: providerName)
    private let writer: SpoolWriter
    private let closed = Atomic<Bool>(false)

    /// Opens the spool at ``FileSpoolConfiguration/directory``, creating it (mode 0700) when
    /// missing.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` when the configuration is invalid
    /// or the directory is unsafe (a symlink, writable by others, owned by another user).
    public init(configuration: FileSpoolConfiguration, logger: Logger = Logger(label: "abe.spool")) throws(MessageQueueError) {
        try configuration.validate()
        let root = try SpoolRoot.prepare(configuration.directory)
        self.configuration = configuration
        self.logger = logger
        let directories = KeyDirectories(keysDirectory: root.keysDirectory)
        self.directories = directories
        writer = SpoolWriter(configuration: configuration, directories: directories, counters: counters, logger: logger)
    }

    /// Creates a backend from `ABE_SPOOL_DIR`, `ABE_SPOOL_*` and `ABE_DEFAULT_GROUP`.
    public static func fromEnvironment(_ environment: [String: String]) throws -> FileSpoolBackend {
        try FileSpoolBackend(configuration: FileSpoolConfiguration(environment: environment))
    }

    nonisolated(nonsending) public func publish(_ payload: MessageQueuePayload, to key: MessageQueueKey) async throws {
        guard !isClosed else { throw MessageQueueError.closed(Self.providerName) }
        let entry = SegmentLog.Entry(json: try payload.jsonBytes(), publishedAtMilliseconds: ConsumerFiles.now())
        let publishing = metrics.publishing(to: key)
        let started = publishing.start()
        try await writer.append(entry, to: key)
        publishing.published(startedAt: started)
    }

    /// Publishes the batch with one write (and one sync) per run of messages to the same key.
    /// Every payload is encoded before anything is written, so an invalid one publishes nothing.
    nonisolated(nonsending) public func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        guard !isClosed else { throw MessageQueueError.closed(Self.providerName) }
        let now = ConsumerFiles.now()
        let entries = try batch.map { item throws(MessageQueueError) in SegmentLog.Entry(json: try item.payload.jsonBytes(), publishedAtMilliseconds: now) }
        var start = 0
        while start < batch.count {
            let key = batch[start].key
            var end = start + 1
            while end < batch.count && batch[end].key == key { end += 1 }
            let publishing = metrics.publishing(to: key)
            let started = publishing.start()
            try await writer.append(Array(entries[start..<end]), to: key)
            publishing.published(end - start, startedAt: started)
            start = end
        }
    }

    public func consume(group: ConsumerGroup?) -> FileSpoolConsumer {
        FileSpoolConsumer(backend: self, keys: nil, group: group ?? configuration.defaultGroup)
    }

    public func consume(keys: [MessageQueueKey], group: ConsumerGroup?) -> FileSpoolConsumer {
        FileSpoolConsumer(backend: self, keys: keys, group: group ?? configuration.defaultGroup)
    }

    /// Writes and syncs what is queued, then refuses further calls; consumers end with
    /// ``MessageQueueError/Code/closed``. Calling it twice is harmless.
    nonisolated(nonsending) public func close() async {
        closed.store(true, ordering: .releasing)
        await writer.close()
    }

    /// Damage this backend has found on disk since it was opened.
    public var statistics: FileSpoolStatistics { counters.snapshot }

    var isClosed: Bool { closed.load(ordering: .acquiring) }

    /// Changes whenever this process appends, so its idle consumers look again at once.
    var appendGeneration: Int { writer.appended.load(ordering: .acquiring) }

    /// Tells this process's idle consumers that something was appended outside the writer.
    func noteAppended() {
        writer.appended.add(1, ordering: .releasing)
    }
}
