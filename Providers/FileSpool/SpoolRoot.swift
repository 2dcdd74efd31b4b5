import AbstractBackend

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The spool's root directory, checked to be safe to keep messages in.
///
/// The spool holds every message of every key, and several processes trust what they read from
/// it, so the root must be a real directory that only its owner can change. ``prepare(_:)``
/// creates it when missing and otherwise refuses, with an error that says how to fix it, a root
/// that
///
/// - is a symbolic link: whoever can change the link (or a directory on its target's path)
///   could redirect the spool, and a check of the link's target would not see later changes;
/// - is not a directory;
/// - is writable by its group or by others: they could delete, replace or plant segment and
///   state files;
/// - belongs to another user: its owner could change its mode at any time, and files this
///   process creates in it would be managed by someone else.
///
/// A root that others may *read* (0755) is accepted: that is the owner's choice, and one this
/// type does not make for them. Roots it creates are 0700.
struct SpoolRoot: Sendable, Hashable {
    /// The mode of every file the spool creates: read-write for the owner only, because records
    /// hold application data that other users have no business reading.
    static let fileMode: mode_t = 0o600
    /// The mode of every directory the spool creates, the root included.
    static let directoryMode: mode_t = 0o700
    /// The name of the directory inside the root that holds one directory per key.
    static let keysDirectoryName = "keys"

    /// The absolute path of the root, without a trailing slash.
    let path: String

    /// The directory holding one directory per key.
    var keysDirectory: String { path + "/" + Self.keysDirectoryName }

    /// Creates `path` with mode 0700 if it is missing (its parent must exist), checks that it is
    /// safe to use, and creates ``keysDirectory`` (0700) inside it.
    ///
    /// Several processes may prepare the same root at once: a directory created by another
    /// process between the checks here is accepted like one that already existed.
    ///
    /// Throws ``MessageQueueError/Code/invalidConfiguration`` for a root that is missing its
    /// parent, is refused (see ``SpoolRoot``) or cannot be created for lack of permission, and
    /// ``MessageQueueError/Code/unavailable`` when the file system fails.
    static func prepare(_ path: String) throws(MessageQueueError) -> SpoolRoot {
        let path = try normalized(path)

        // Only the root itself is created, never missing parents: a typo in the parent's path
        // would otherwise silently build a new tree (with the umask's modes for the parents)
        // instead of failing.
        var created = false
        if mkdir(path, directoryMode) == 0 {
            created = true
        } else if errno == ENOENT {
            throw missingParent(of: path)
        } else if errno != EEXIST {
            throw failure("create the spool root", path)
        }

        // `lstat`, not `stat`: `stat` follows a symbolic link and would report its target.
        var status = stat()
        guard lstat(path, &status) == 0 else { throw failure("inspect the spool root", path) }
        try checkKind(status, path, what: "spool root")

        // Open without following links and compare with what lstat saw, so that the checks
        // below and the directory they are about are the same object even if someone swaps the
        // path in between.
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open the spool root", path) }
        defer { _ = close(descriptor) }
        var opened = stat()
        guard fstat(descriptor, &opened) == 0 else { throw failure("inspect the spool root", path) }
        guard opened.st_dev == status.st_dev, opened.st_ino == status.st_ino else {
            throw MessageQueueError(
                .unavailable,
                "the spool root \(path) was replaced while it was being checked; try again, and make sure no other "
                    + "program renames or replaces it"
            )
        }

        if created {
            // mkdir applies the umask; a restrictive one (say 0277) would leave a root its owner
            // cannot write. Set the mode exactly, on the descriptor rather than the path.
            if opened.st_mode & 0o7777 != directoryMode {
                guard fchmod(descriptor, directoryMode) == 0 else { throw failure("set the mode of the spool root", path) }
                opened.st_mode = (opened.st_mode & ~0o7777) | directoryMode
            }
            // The new root's entry in its parent must be durable before anything written inside
            // it can be: after a power failure a synced segment in a root whose own entry was
            // lost would be lost with it.
            try syncDirectory(parent(of: path))
        }
        try checkOwnerAndMode(opened, path, what: "spool root")

        try prepareKeysDirectory(in: descriptor, root: path)
        return SpoolRoot(path: path)
    }

    // MARK: Steps

    /// Creates (0700) and checks the keys directory, by name relative to the already checked
    /// root descriptor so that the root cannot be swapped underneath.
    private static func prepareKeysDirectory(in root: Int32, root rootPath: String) throws(MessageQueueError) {
        let path = rootPath + "/" + keysDirectoryName
        var created = false
        if mkdirat(root, keysDirectoryName, directoryMode) == 0 {
            created = true
        } else if errno != EEXIST {
            throw failure("create the keys directory", path)
        }
        // A `keys` that is a link could point anywhere, taking every key's files out of the root.
        var status = stat()
        guard fstatat(root, keysDirectoryName, &status, AT_SYMLINK_NOFOLLOW) == 0 else {
            throw failure("inspect the keys directory", path)
        }
        try checkKind(status, path, what: "keys directory")
        if created {
            if status.st_mode & 0o7777 != directoryMode {
                // Checked just above to be a directory (not a link) that this process created.
                guard fchmodat(root, keysDirectoryName, directoryMode, 0) == 0 else {
                    throw failure("set the mode of the keys directory", path)
                }
                status.st_mode = (status.st_mode & ~0o7777) | directoryMode
            }
            try syncDirectory(descriptor: root, path: rootPath)
        }
        try checkOwnerAndMode(status, path, what: "keys directory")
    }

    /// Refuses a symbolic link or anything that is not a directory.
    private static func checkKind(_ status: stat, _ path: String, what: String) throws(MessageQueueError) {
        let kind = status.st_mode & S_IFMT
        if kind == S_IFLNK {
            let target = linkTarget(path).map { " to \(shellQuoted($0))" } ?? ""
            throw MessageQueueError(
                .invalidConfiguration,
                "the \(what) \(path) is a symbolic link\(target); a link could redirect the spool to a place "
                    + "someone else controls, so it is refused. Set \(FileSpoolConfiguration.Variable.directory) "
                    + "to the real directory, or replace the link with a directory (mode 0700)"
            )
        }
        if kind != S_IFDIR {
            throw MessageQueueError(
                .invalidConfiguration,
                "the \(what) \(path) is not a directory (it is \(kindName(kind))); remove or rename it, or set "
                    + "\(FileSpoolConfiguration.Variable.directory) to another path"
            )
        }
    }

    /// Refuses a directory of another user, or one its group or others may write to.
    private static func checkOwnerAndMode(_ status: stat, _ path: String, what: String) throws(MessageQueueError) {
        // Ownership first: only the owner (or root) can run the chmod the mode check suggests.
        let user = geteuid()
        if status.st_uid != user {
            throw MessageQueueError(
                .invalidConfiguration,
                "the \(what) \(path) is owned by uid \(status.st_uid), not by this process's user (uid \(user)); "
                    + "its owner could change it at any time. Run chown \(user) \(shellQuoted(path)) as root, "
                    + "or set \(FileSpoolConfiguration.Variable.directory) to a directory of your own"
            )
        }
        let mode = status.st_mode & 0o7777
        let writers = [(mode & 0o020 != 0, "its group"), (mode & 0o002 != 0, "other users")].filter(\.0).map(\.1)
        if !writers.isEmpty {
            throw MessageQueueError(
                .invalidConfiguration,
                "the \(what) \(path) is writable by \(writers.joined(separator: " and ")) (mode \(octal(mode))), "
                    + "who could delete or plant spool files; run chmod 700 \(shellQuoted(path))"
            )
        }
    }

    // MARK: Helpers

    /// The absolute `path` without trailing slashes; `lstat("link/")` would follow the link.
    private static func normalized(_ path: String) throws(MessageQueueError) -> String {
        guard path.hasPrefix("/"), !path.utf8.contains(0) else {
            throw MessageQueueError(
                .invalidConfiguration,
                "the spool root \(String(reflecting: path)) is not an absolute path; use one such as /var/lib/myapp/spool"
            )
        }
        var trimmed = Substring(path)
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        return String(trimmed)
    }

    /// The directory containing `path`, by text.
    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    /// The error for a root whose parent directory (or one above it) does not exist.
    private static func missingParent(of path: String) -> MessageQueueError {
        let parent = parent(of: path)
        return MessageQueueError(
            .invalidConfiguration,
            "cannot create the spool root \(path): its parent directory \(parent) does not exist. Only the root "
                + "itself is created; create the parent first (mkdir -p \(shellQuoted(parent))) or set "
                + "\(FileSpoolConfiguration.Variable.directory) to a path whose parent exists"
        )
    }

    /// Makes the entries of the directory at `path` durable.
    private static func syncDirectory(_ path: String) throws(MessageQueueError) {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { throw failure("open directory", path) }
        defer { _ = close(descriptor) }
        try syncDirectory(descriptor: descriptor, path: path)
    }

    private static func syncDirectory(descriptor: Int32, path: String) throws(MessageQueueError) {
        guard fsync(descriptor) == 0 else { throw failure("fsync directory", path) }
    }

    /// The error for a failed call, with the system's reason; a permission problem is a
    /// configuration error, anything else the file system's.
    private static func failure(_ operation: String, _ path: String) -> MessageQueueError {
        let code = errno
        let reason = String(cString: strerror(code))
        let isConfiguration = code == EACCES || code == EPERM || code == EROFS || code == ENOTDIR
            || code == ENAMETOOLONG || code == ELOOP
        return MessageQueueError(
            isConfiguration ? .invalidConfiguration : .unavailable,
            "cannot \(operation) \(path): \(reason)"
        )
    }

    /// What a symbolic link points to, as stored in the link, for error messages.
    private static func linkTarget(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let count = readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func kindName(_ kind: mode_t) -> String {
        switch kind {
        case S_IFREG: return "a regular file"
        case S_IFCHR: return "a character device"
        case S_IFBLK: return "a block device"
        case S_IFIFO: return "a named pipe"
        case S_IFSOCK: return "a socket"
        default: return "a file of an unknown kind"
        }
    }

    /// `0770`: a mode as `chmod` spells it.
    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    /// `path` as it can be pasted into a shell command: unchanged when it holds only safe
    /// characters, otherwise in single quotes.
    static func shellQuoted(_ path: String) -> String {
        let safe = path.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"):
                return true
            default:
                return "/._-+,:@%".utf8.contains(byte)
            }
        }
        if safe && !path.isEmpty { return path }
        var quoted = "'"
        for character in path {
            // A single quote cannot appear inside single quotes: close, add an escaped one, reopen.
            quoted += character == "'" ? "'\\''" : String(character)
        }
        return quoted + "'"
    }
}
