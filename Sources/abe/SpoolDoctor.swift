import AbstractBackend
import AbstractBackendFileSpool

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The live checks of `abe doctor` for the file spool: the root as the provider checks it, a test
/// write, free disk space and what the fsync policy means. File-system calls run on a
/// ``OwnedThread``.
enum SpoolDoctor {
    static func check(_ environment: [String: String], output: inout DoctorOutput) async throws {
        let configuration = try await output.checked("configuration") { try FileSpoolConfiguration(environment: environment) }
        output.ok("configuration: \(configuration)")
        let thread = OwnedThread(name: "abe-doctor")
        defer { thread.stop() }
        let root = configuration.directory
        let parent = Self.parent(of: root)

        let exists = await thread.run { var status = stat(); return lstat(root, &status) == 0 ? status : nil }
        if let status = exists {
            // Opening the backend runs the provider's own checks: not a symlink, a directory, owned
            // by this user, not writable by group or others.
            let backend = try await output.checked("spool root \(root)") {
                try await thread.run { Result { try FileSpoolBackend(configuration: configuration) } }.get()
            }
            await backend.close()
            output.ok("spool root \(root): a directory owned by uid \(status.st_uid), mode \(octal(status.st_mode & 0o7777))")
            let keys = root + "/keys"
            try await output.checked("test write in \(keys)") {
                try await thread.run { probeWrite(in: keys, root: root) }.get()
            }
            output.ok("test write: created and removed a file in \(keys)")
        } else {
            let parentIsDirectory = await thread.run { var status = stat(); return stat(parent, &status) == 0 && status.st_mode & S_IFMT == S_IFDIR }
            guard parentIsDirectory else {
                output.line("  FAIL  spool root \(root)")
                throw CLIFailure(
                    .configuration,
                    "cannot create the spool root \(root): its parent directory \(parent) does not exist; create it first (mkdir -p \(parent)) or set ABE_SPOOL_DIR to a path whose parent exists"
                )
            }
            try await output.checked("spool root \(root)") {
                try await thread.run { probeWrite(in: parent, root: root) }.get()
            }
            output.ok("spool root \(root) does not exist yet; it is created (mode 0700) on first use, and \(parent) is writable")
        }

        let space = await thread.run { () -> (available: UInt64, total: UInt64)? in
            var info = statvfs()
            guard statvfs(exists == nil ? parent : root, &info) == 0 else { return nil }
            return (UInt64(info.f_bavail) * UInt64(info.f_frsize), UInt64(info.f_blocks) * UInt64(info.f_frsize))
        }
        if let space {
            let text = "free disk: \(bytes(space.available)) of \(bytes(space.total))"
            if space.available < 1 << 30 || space.available * 20 < space.total {
                output.warn(text + "; publishing fails once the disk is full")
            } else {
                output.ok(text)
            }
        } else {
            output.warn("free disk: unknown (statvfs failed: \(String(cString: strerror(errno))))")
        }

        switch configuration.fsync {
        case .always:
            output.ok("fsync always: publish returns after fdatasync; nothing whose publish returned is lost, even by a power failure")
        case .interval:
            output.ok("fsync interval: synced every \(Int((configuration.fsyncInterval.seconds * 1000).rounded())) ms; a machine crash can lose what was published in the last interval")
        case .never:
            output.warn("fsync never: publish returns before the write and nothing is synced; a killed process can lose its last publishes (up to 1 MiB), a machine crash what the kernel has not written back yet")
        }
    }

    /// Creates and removes a file in `directory`, to learn whether the spool can write there.
    private static func probeWrite(in directory: String, root: String) -> Result<Void, CLIFailure> {
        let path = directory + "/.abe-doctor-\(getpid())"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            let code = errno
            let status: ExitStatus = code == EACCES || code == EPERM || code == EROFS ? .configuration : .unavailable
            return .failure(CLIFailure(status, "cannot write in \(directory) (\(String(cString: strerror(code)))), so the spool at \(root) cannot be used; make it writable by this user (uid \(geteuid())) or set ABE_SPOOL_DIR to another directory"))
        }
        close(descriptor)
        unlink(path)
        return .success(())
    }

    private static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return "/" }
        return String(path[..<slash])
    }

    private static func octal(_ mode: mode_t) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    private static func bytes(_ count: UInt64) -> String {
        let gibibytes = Double(count) / Double(1 << 30)
        if gibibytes >= 1 { return "\((gibibytes * 10).rounded() / 10) GiB" }
        return "\((Double(count) / Double(1 << 20) * 10).rounded() / 10) MiB"
    }
}
