import Logging
import Synchronization

/// A log handler that keeps every record, so tests can assert what was logged.
public final class CapturedLogs: Sendable {
    /// One log call.
    public struct Record: Sendable {
        public let level: Logger.Level
        public let message: String
        public let metadata: [String: String]
    }

    private let storage = Mutex<[Record]>([])

    /// Every record so far, oldest first.
    public var records: [Record] { storage.withLock { $0 } }

    /// Every record as one text, message and metadata, for "never appears" checks.
    public var allText: String {
        records.map { "\($0.level) \($0.message) \($0.metadata)" }.joined(separator: "\n")
    }

    public init() {}

    /// A logger at trace level that records into this capture.
    public func logger(label: String = "test") -> Logger {
        var logger = Logger(label: label) { _ in Handler(logs: self) }
        logger.logLevel = .trace
        return logger
    }

    fileprivate func append(_ record: Record) {
        storage.withLock { $0.append(record) }
    }

    private struct Handler: LogHandler {
        let logs: CapturedLogs
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let merged = metadata.merging(event.metadata ?? [:]) { _, new in new }
            logs.append(Record(level: event.level, message: "\(event.message)", metadata: merged.mapValues { "\($0)" }))
        }
    }
}
