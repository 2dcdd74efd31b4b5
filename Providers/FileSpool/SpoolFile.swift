import AbstractBackend
import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An open file of the spool: the few POSIX calls the spool makes, each failing with a
/// ``MessageQueueError`` that names the file and the system's reason.
///
/// Blocking calls; the spool makes them only on threads it owns, never on Swift's cooperative pool.
final class SpoolFile {
    private static let temporaryCounter = Atomic<Int>(0)

    let path: String
    let descriptor: Int32

    /// Opens `path` read-write, creating it with mode 0600 when `create` is set.
    init(path: String, create: Bool) throws(MessageQueueError) {
        self.path = path
        let flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0)
        let descriptor = Glibc.open(path, flags, 0o600)
        guard descriptor >= 0 else { throw SpoolFile.failure("open", path) }
        self.descriptor = descriptor
    }

    deinit {
        _ = Glibc.close(descriptor)
    }

    var size: Int {
        get throws(MessageQueueError) {
            var status = stat()
            guard fstat(descriptor, &status) == 0 else { throw SpoolFile.failure("stat", path) }
            return Int(status.st_size)
        }
    }

    /// Reads `count` bytes at `offset` (fewer at the end of the file).
    func read(at offset: Int, count: Int) throws(MessageQueueError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let result = bytes.withUnsafeMutableBytes { buffer in
                pread(descriptor, buffer.baseAddress! + done, count - done, off_t(offset + done))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw SpoolFile.failure("read", path)
            }
            if result == 0 { break }
            done += result
        }
        bytes.removeLast(count - done)
        return bytes
    }

    /// Writes all of `bytes` at `offset`.
    func write(_ bytes: [UInt8], at offset: Int) throws(MessageQueueError) {
        var done = 0
        while done < bytes.count {
            let result = bytes.withUnsafeBytes { raw in
                pwrite(descriptor, raw.baseAddress! + done, raw.count - done, off_t(offset + done))
            }
            if result < 0 {
                if errno == EINTR { continue }
                throw SpoolFile.failure("write", path)
            }
            done += result
        }
    }

    /// Makes written data durable (`fdatasync`).
    func syncData() throws(MessageQueueError) {
        guard fdatasync(descriptor) == 0 else { throw SpoolFile.failure("fdatasync", path) }
    }

    func truncate(to length: Int) throws(MessageQueueError) {
        guard ftruncate(descriptor, off_t(length)) == 0 else { throw SpoolFile.failure("truncate", path) }
    }

    /// Takes (`exclusive`) or shares an advisory lock on the whole file, waiting for it
    /// (`flock`): the spool's processes serialise appends and group updates with it.
    func lock(exclusive: Bool) throws(MessageQueueError) {
        while flock(descriptor, exclusive ? LOCK_EX : LOCK_SH) != 0 {
            if errno == EINTR { continue }
            throw SpoolFile.failure("lock", path)
        }
    }

    func unlock() {
        _ = flock(descriptor, LOCK_UN)
    }

    /// Makes a directory's entries durable: after creating, renaming or removing a file in it.
    static func syncDirectory(_ path: String) throws(MessageQueueError) {
        let descriptor = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open directory", path) }
        defer { _ = Glibc.close(descriptor) }
        guard fsync(descriptor) == 0 else { throw failure("fsync directory", path) }
    }

    /// Replaces (or creates) `directory/name` with `bytes` crash-safely: written to a temporary
    /// `.name.<pid>-<n>.new` (unique, since threads and processes may replace the same name at
    /// once), synced, renamed over the name, and the directory synced. After a crash the name
    /// holds either the old or the new content, never a part.
    static func replace(directory: String, name: String, bytes: [UInt8]) throws(MessageQueueError) {
        let temporary = directory + "/." + name + ".\(getpid())-\(temporaryCounter.add(1, ordering: .relaxed).newValue).new"
        let file = try SpoolFile(path: temporary, create: true)
        try file.truncate(to: 0)
        try file.write(bytes, at: 0)
        try file.syncData()
        guard rename(temporary, directory + "/" + name) == 0 else { throw failure("rename", temporary) }
        try syncDirectory(directory)
    }

    /// Creates a directory with mode 0700 unless it exists.
    static func makeDirectory(_ path: String) throws(MessageQueueError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw failure("create directory", path) }
    }

    /// The error for a failed call, with the system's reason.
    static func failure(_ operation: String, _ path: String) -> MessageQueueError {
        let code = errno
        let reason = String(cString: strerror(code))
        let kind: MessageQueueError.Code = (code == EACCES || code == EPERM || code == EROFS) ? .invalidConfiguration : .unavailable
        return MessageQueueError(kind, "cannot \(operation) \(path): \(reason)")
    }
}
