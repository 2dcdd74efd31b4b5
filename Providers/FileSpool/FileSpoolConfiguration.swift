import AbstractBackend

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Options of the file-spool provider: where the spool lives, how hard it works to keep
/// published messages on disk, and how it delivers them.
///
/// A plain value with a default for every option except the directory. Build one in code:
///
/// ```swift
/// var configuration = FileSpoolConfiguration(directory: "/var/lib/billing/spool")
/// configuration.fsync = .interval
/// configuration.fsyncInterval = .milliseconds(50)
/// try configuration.validate()
/// ```
///
/// or read it from the environment (`ABE_SPOOL_DIR` and the variables listed in ``variables``):
///
/// ```swift
/// let configuration = try FileSpoolConfiguration(environment: ProcessInfo.processInfo.environment)
/// ```
///
/// The spool root is created with mode 0700 when missing; a root that is a symbolic link, is not
/// a directory, is writable by its group or by others, or belongs to another user is refused when
/// the backend opens it.
public struct FileSpoolConfiguration: Sendable, Hashable {
    /// When a published record is written and forced to disk, which decides what a crash can lose.
    ///
    /// Under `always` and `interval`, `publish` returns once the record is written, so a crash of
    /// the publishing *process* never loses a record whose `publish` returned: it is in the
    /// kernel's page cache by then; these two differ in what a crash of the *machine* (power
    /// loss, kernel panic) can lose. Under `never`, `publish` returns before the write, so a
    /// killed or crashed process can also lose its last moments of publishes.
    public enum FsyncPolicy: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// The default: `publish` returns only after the record is on disk (`fdatasync`).
        /// Concurrent publishers share one sync (group commit), so throughput grows with
        /// concurrency. Nothing whose `publish` returned is lost, even by a power failure.
        case always
        /// The spool syncs at most every ``FileSpoolConfiguration/fsyncInterval``; `publish`
        /// does not wait for it. A machine crash can lose the records published in the last
        /// interval (plus the time the sync itself takes).
        case interval
        /// The fastest: `publish` returns once the message is queued for the backend's writer
        /// thread, which writes it within about a millisecond, and records are never synced; the
        /// kernel writes them back when it chooses (on Linux typically within about 30 s,
        /// `vm.dirty_expire_centisecs`).
        ///
        /// - A process that is killed or crashes loses what its writer had not written yet: at
        ///   most 1 MiB of JSON (past that, `publish` waits for the writer), usually the last
        ///   millisecond of publishes. ``FileSpoolBackend/close()`` and a normal exit (returning
        ///   from `main`, `exit()`) write everything first.
        /// - A machine crash can lose everything the kernel has not written back.
        /// - A write that fails after `publish` returned loses those messages: it is logged,
        ///   counted in ``FileSpoolStatistics/lostMessages``, and every later `publish` fails.
        ///
        /// For data you can afford to lose or recreate.
        case never

        /// `always`, `interval` or `never`: the spelling `ABE_SPOOL_FSYNC` accepts.
        public var description: String { rawValue }
    }

    // MARK: Defaults and limits

    /// The default of ``fsyncInterval``: 100 ms.
    public static let defaultFsyncInterval: Duration = .milliseconds(100)
    /// The allowed values of ``fsyncInterval``: 1 ms to 60 s, in whole milliseconds.
    public static let fsyncIntervalMillisecondsRange: ClosedRange<Int> = 1...60_000
    /// The allowed values of ``visibilityTimeout``: 1 ms to 7 days, as for the Redis provider.
    public static let visibilityTimeoutRange: ClosedRange<Duration> = .milliseconds(1) ... .seconds(86_400 * 7)
    /// The allowed values of ``maxDeliveries``.
    public static let maxDeliveriesRange: ClosedRange<Int> = 1...1_000_000
    /// The allowed values of ``prefetch``.
    public static let prefetchRange: ClosedRange<Int> = 1...65_536
    /// The default of ``segmentSize``: 64 MiB.
    public static let defaultSegmentSize = 64 << 20
    /// The allowed values of ``segmentSize``: 4 KiB to 1 GiB.
    ///
    /// Below 4 KiB a segment holds hardly more than its header and a record or two, so the spool
    /// would spend its time creating files; above 1 GiB retention, which deletes whole segments,
    /// would keep too much acknowledged data on disk.
    public static let segmentSizeRange: ClosedRange<Int> = (4 << 10)...(1 << 30)

    // MARK: Options

    /// The absolute path of the spool root. `ABE_SPOOL_DIR` (required there); a relative path
    /// given to ``init(directory:fsync:fsyncInterval:visibilityTimeout:maxDeliveries:prefetch:segmentSize:defaultGroup:)``
    /// or in `ABE_SPOOL_DIR` is resolved against the current directory when the configuration is made.
    ///
    /// It is kept absolute so that a later `chdir` of the process cannot move the spool, and so
    /// that logs and errors show exactly which directory is meant. Several processes (and
    /// backends) may use the same directory at once.
    public var directory: String
    /// When records are forced to disk. `ABE_SPOOL_FSYNC`, default ``FsyncPolicy/always``.
    public var fsync: FsyncPolicy = .always
    /// The longest time between two syncs under ``FsyncPolicy/interval``; ignored by the other
    /// policies. 1 ms to 60 s. `ABE_SPOOL_FSYNC_INTERVAL_MS` (whole milliseconds), default 100 ms.
    public var fsyncInterval: Duration = defaultFsyncInterval
    /// How long a delivered message may stay unacknowledged before it is delivered again, also
    /// when its consumer's process died. `ABE_SPOOL_VISIBILITY_TIMEOUT`, default 30 s.
    public var visibilityTimeout: Duration = .seconds(30)
    /// Deliveries after which a failing message moves to the dead-letter key `<key>:dead-letter`.
    /// `ABE_SPOOL_MAX_DELIVERIES`, default 5.
    public var maxDeliveries: Int = 5
    /// How many messages a consumer reads ahead of the application, 1 to 65536.
    /// `ABE_SPOOL_PREFETCH`, default 256.
    public var prefetch: Int = 256
    /// The size in bytes at which a key's log starts a new segment file, 4 KiB to 1 GiB.
    /// `ABE_SPOOL_SEGMENT_BYTES`, default 64 MiB.
    ///
    /// Retention deletes whole segments once every group has acknowledged them, so disk use is
    /// bounded by the unacknowledged data plus about one segment per key.
    public var segmentSize: Int = defaultSegmentSize
    /// The group `consume(group: nil)` joins. `ABE_DEFAULT_GROUP`, default `default`.
    public var defaultGroup: ConsumerGroup = .defaultGroup

    /// Creates a configuration; every option but the directory has its documented default.
    ///
    /// A relative `directory` is resolved against the current directory now (see ``directory``).
    /// The values are checked by ``validate()``, which the backend calls before opening the spool.
    public init(
        directory: String,
        fsync: FsyncPolicy = .always,
        fsyncInterval: Duration = defaultFsyncInterval,
        visibilityTimeout: Duration = .seconds(30),
        maxDeliveries: Int = 5,
        prefetch: Int = 256,
        segmentSize: Int = defaultSegmentSize,
        defaultGroup: ConsumerGroup = .defaultGroup
    ) {
        // An empty path stays empty rather than becoming the current directory, and a path
        // that cannot be resolved (the current directory is unknown) stays relative: `validate()`
        // reports both.
        self.directory = directory.isEmpty ? directory : (try? Self.absolutePath(directory)) ?? directory
        self.fsync = fsync
        self.fsyncInterval = fsyncInterval
        self.visibilityTimeout = visibilityTimeout
        self.maxDeliveries = maxDeliveries
        self.prefetch = prefetch
        self.segmentSize = segmentSize
        self.defaultGroup = defaultGroup
    }

    // MARK: Environment

    /// Reads the configuration from the environment.
    ///
    /// `ABE_SPOOL_DIR` is required: the spool root, absolute or relative to the current
    /// directory. The other variables are listed in ``variables``.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad variable,
    /// its value and what to use instead.
    public init(environment: [String: String]) throws(MessageQueueError) {
        let reader = EnvironmentReader(environment)
        guard let path = reader.string(Variable.directory) else {
            throw MessageQueueError(
                .invalidConfiguration,
                "\(Variable.directory) is not set; set it to the spool's directory, e.g. "
                    + "\(Variable.directory)=/var/lib/myapp/spool (created with mode 0700 if missing; its parent must exist)"
            )
        }
        // The shell expands `~` only in unquoted words; from a .env file or a quoted value it
        // would become a directory literally named `~` in the current directory, which a later
        // `rm -rf ~` meant for it would turn into a disaster.
        if path.hasPrefix("~") {
            throw reader.invalid(
                Variable.directory, path,
                "starts with \"~\", which is not expanded here; use an absolute path such as /home/<user>/spool"
            )
        }
        do {
            directory = try Self.absolutePath(path)
        } catch {
            throw reader.invalid(Variable.directory, path, "\(error); use an absolute path")
        }

        let policy = try reader.choice(Variable.fsync, default: fsync.rawValue, from: FsyncPolicy.allCases.map(\.rawValue))
        // `choice` returns one of the given spellings, so this always succeeds.
        fsync = FsyncPolicy(rawValue: policy) ?? .always
        let intervalMilliseconds = try reader.integer(
            Variable.fsyncIntervalMilliseconds, default: 100, in: Self.fsyncIntervalMillisecondsRange
        )
        fsyncInterval = .milliseconds(intervalMilliseconds)
        visibilityTimeout = try reader.duration(
            Variable.visibilityTimeout, default: visibilityTimeout, in: Self.visibilityTimeoutRange
        )
        maxDeliveries = try reader.integer(Variable.maxDeliveries, default: maxDeliveries, in: Self.maxDeliveriesRange)
        prefetch = try reader.integer(Variable.prefetch, default: prefetch, in: Self.prefetchRange)
        segmentSize = try reader.integer(Variable.segmentSize, default: segmentSize, in: Self.segmentSizeRange)
        defaultGroup = try ConsumerGroup.configuredDefault(in: environment)
        try validate()
    }

    /// The environment variables the file-spool provider reads.
    public enum Variable {
        /// The spool root (required); its presence selects the provider.
        public static let directory = "ABE_SPOOL_DIR"
        /// `always`, `interval` or `never`.
        public static let fsync = "ABE_SPOOL_FSYNC"
        /// The longest time between syncs under `interval`, in whole milliseconds.
        public static let fsyncIntervalMilliseconds = "ABE_SPOOL_FSYNC_INTERVAL_MS"
        /// Time before an unacknowledged delivery is delivered again.
        public static let visibilityTimeout = "ABE_SPOOL_VISIBILITY_TIMEOUT"
        /// Deliveries before a message moves to the dead-letter key.
        public static let maxDeliveries = "ABE_SPOOL_MAX_DELIVERIES"
        /// Messages a consumer reads ahead.
        public static let prefetch = "ABE_SPOOL_PREFETCH"
        /// The size at which a key's log starts a new segment file, in bytes.
        public static let segmentSize = "ABE_SPOOL_SEGMENT_BYTES"
    }

    /// Every environment variable of the file-spool provider, with its format and default, for
    /// provider descriptors and tools. None is secret.
    public static let variables: [EnvironmentVariable] = [
        EnvironmentVariable(
            Variable.directory,
            "required: the spool's directory, absolute or relative to the current directory; created with mode 0700 "
                + "if missing (its parent must exist); refused if it is a symlink, not a directory, writable by group "
                + "or others, or owned by another user"
        ),
        EnvironmentVariable(
            Variable.fsync,
            "always (default: publish returns after fdatasync, nothing acknowledged is lost), interval (sync every "
                + "ABE_SPOOL_FSYNC_INTERVAL_MS; a machine crash loses up to one interval) or never (the kernel writes "
                + "back; a machine crash loses what was not yet written); a process crash loses nothing under any policy"
        ),
        EnvironmentVariable(
            Variable.fsyncIntervalMilliseconds,
            "longest time between syncs with ABE_SPOOL_FSYNC=interval, whole milliseconds, 1 to 60000 (default 100)"
        ),
        EnvironmentVariable(
            Variable.visibilityTimeout,
            "time before an unacknowledged delivery is redelivered, also when its consumer process died, "
                + "1ms to 7 days (default 30s)"
        ),
        EnvironmentVariable(Variable.maxDeliveries, "deliveries before a message moves to <key>:dead-letter, 1 to 1000000 (default 5)"),
        EnvironmentVariable(Variable.prefetch, "messages a consumer reads ahead, 1 to 65536 (default 256)"),
        EnvironmentVariable(
            Variable.segmentSize,
            "size in bytes at which a key's log starts a new segment file, 4096 to 1073741824 (default 67108864, 64 MiB)"
        ),
        EnvironmentVariable(ConsumerGroup.defaultGroupVariable, "the group consume(group: nil) joins (default \"default\")"),
    ]

    // MARK: Validation

    /// Checks every option against its documented range, and that ``directory`` is an absolute path.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` naming the first bad property.
    /// ``init(environment:)`` calls it; the backend calls it again before opening the spool.
    /// Whether the directory itself is usable is checked when the spool is opened.
    public func validate() throws(MessageQueueError) {
        func invalid(_ property: String, _ problem: String) -> MessageQueueError {
            MessageQueueError(.invalidConfiguration, "FileSpoolConfiguration.\(property) \(problem)")
        }
        if directory.isEmpty {
            throw invalid("directory", "is empty; use the absolute path of the spool's directory")
        }
        if directory.utf8.contains(0) {
            throw invalid("directory", "contains a NUL character; use a path without one")
        }
        if !directory.hasPrefix("/") {
            throw invalid("directory", "is the relative path \(String(reflecting: directory)); use an absolute path")
        }
        let milliseconds = Self.wholeMilliseconds(fsyncInterval)
        if milliseconds.map({ !Self.fsyncIntervalMillisecondsRange.contains($0) }) ?? true {
            throw invalid("fsyncInterval", "is \(fsyncInterval.formatted); use whole milliseconds from 1ms to 60000ms")
        }
        if !Self.visibilityTimeoutRange.contains(visibilityTimeout) {
            throw invalid("visibilityTimeout", "is \(visibilityTimeout.formatted); use 1ms to 7 days")
        }
        if !Self.maxDeliveriesRange.contains(maxDeliveries) {
            throw invalid("maxDeliveries", "is \(maxDeliveries); use 1 to \(Self.maxDeliveriesRange.upperBound)")
        }
        if !Self.prefetchRange.contains(prefetch) {
            throw invalid("prefetch", "is \(prefetch); use 1 to \(Self.prefetchRange.upperBound)")
        }
        if !Self.segmentSizeRange.contains(segmentSize) {
            throw invalid(
                "segmentSize",
                "is \(segmentSize) bytes; use \(Self.segmentSizeRange.lowerBound) (4 KiB) to \(Self.segmentSizeRange.upperBound) (1 GiB)"
            )
        }
    }

    // MARK: Helpers

    /// Why resolving a relative path failed.
    struct PathError: Error, CustomStringConvertible {
        var description: String
    }

    /// `path` made absolute against the current directory, with empty and `.` components and
    /// trailing slashes removed.
    ///
    /// `..` is kept: removing it by text would be wrong when the component before it is a
    /// symbolic link. Trailing slashes matter because `lstat("link/")` follows the link, which
    /// would hide a symlinked spool root from the check that refuses one.
    static func absolutePath(_ path: String) throws(PathError) -> String {
        var full = path
        if !path.hasPrefix("/") {
            guard let current = currentDirectory() else {
                throw PathError(description: "is relative and the current directory cannot be determined (\(String(cString: strerror(errno))))")
            }
            full = current + "/" + path
        }
        let components = full.split(separator: "/", omittingEmptySubsequences: true).filter { $0 != "." }
        return "/" + components.joined(separator: "/")
    }

    private static func currentDirectory() -> String? {
        // PATH_MAX on Linux; getcwd fails with ERANGE for anything longer, which is reported.
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// The whole number of milliseconds in `duration`, or `nil` when it has a fraction of one.
    static func wholeMilliseconds(_ duration: Duration) -> Int? {
        let (seconds, attoseconds) = duration.components
        let perMillisecond: Int64 = 1_000_000_000_000_000
        guard attoseconds % perMillisecond == 0, seconds >= 0, seconds < Int64.max / 1000 else { return nil }
        return Int(seconds * 1000 + attoseconds / perMillisecond)
    }
}

extension FileSpoolConfiguration: CustomStringConvertible {
    /// A one-line summary of every option, e.g.
    /// `FileSpoolConfiguration(directory: "/var/spool/app", fsync: always, fsyncInterval: 100ms, …)`.
    public var description: String {
        "FileSpoolConfiguration(directory: \(String(reflecting: directory)), fsync: \(fsync), "
            + "fsyncInterval: \(fsyncInterval.formatted), visibilityTimeout: \(visibilityTimeout.formatted), "
            + "maxDeliveries: \(maxDeliveries), prefetch: \(prefetch), segmentSize: \(segmentSize), "
            + "defaultGroup: \(String(reflecting: defaultGroup.name)))"
    }
}
