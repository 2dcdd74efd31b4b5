import AbstractBackend
@testable import AbstractBackendFileSpool
import Foundation
import Synchronization
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `SpoolRoot.prepare` on the real file system, each test in a fresh temporary directory.
final class SpoolRootTests: XCTestCase {
    /// A fresh directory (0700, from mkdtemp) removed after the test.
    private var base = ""

    override func setUpWithError() throws {
        var template = Array((NSTemporaryDirectory() + "/spool-root-tests-XXXXXX").utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) != nil }
        guard created else { throw XCTSkip("mkdtemp failed: \(String(cString: strerror(errno)))") }
        let path = String(decoding: template.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // Resolve symlinks in the temporary directory's own path (e.g. /tmp → /private/tmp):
        // the tests compare paths and plant links of their own.
        base = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
    }

    override func tearDownWithError() throws {
        if !base.isEmpty { try? FileManager.default.removeItem(atPath: base) }
    }

    // MARK: Helpers

    /// The `lstat` of `path`, or `nil` when it does not exist.
    private func status(_ path: String) -> stat? {
        var result = stat()
        return lstat(path, &result) == 0 ? result : nil
    }

    private func mode(_ path: String) -> mode_t? {
        status(path).map { $0.st_mode & 0o7777 }
    }

    private func isDirectory(_ path: String) -> Bool {
        status(path).map { $0.st_mode & S_IFMT == S_IFDIR } ?? false
    }

    private func makeDirectory(_ path: String, mode: mode_t, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(mkdir(path, 0o700), 0, "mkdir \(path)", file: file, line: line)
        // chmod, not mkdir's mode, so the umask does not interfere.
        XCTAssertEqual(chmod(path, mode), 0, "chmod \(path)", file: file, line: line)
    }

    private func writeFile(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    private func entries(_ path: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []).sorted()
    }

    /// The error `prepare(path)` throws; fails the test when it succeeds.
    private func refusal(_ path: String, file: StaticString = #filePath, line: UInt = #line) -> MessageQueueError? {
        do {
            let root = try SpoolRoot.prepare(path)
            XCTFail("accepted \(root.path)", file: file, line: line)
            return nil
        } catch {
            return error
        }
    }

    private func assertMessage(
        _ error: MessageQueueError?,
        contains parts: [String],
        code: MessageQueueError.Code = .invalidConfiguration,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        guard let error else { return }
        XCTAssertEqual(error.code, code, error.message, file: file, line: line)
        for part in parts {
            XCTAssertTrue(error.message.contains(part), "\(error.message)\ndoes not contain: \(part)", file: file, line: line)
        }
    }

    // MARK: Creating

    func testCreatesTheRootAndKeysWithMode0700() throws {
        let path = base + "/spool"
        let root = try SpoolRoot.prepare(path)
        XCTAssertEqual(root.path, path)
        XCTAssertEqual(root.keysDirectory, path + "/keys")
        XCTAssertTrue(isDirectory(path))
        XCTAssertEqual(mode(path), 0o700)
        XCTAssertTrue(isDirectory(root.keysDirectory))
        XCTAssertEqual(mode(root.keysDirectory), 0o700)
        XCTAssertEqual(status(path)?.st_uid, geteuid())
        XCTAssertEqual(entries(path), ["keys"])
        XCTAssertEqual(entries(base), ["spool"])
        XCTAssertEqual(SpoolRoot.fileMode, 0o600)
        XCTAssertEqual(SpoolRoot.directoryMode, 0o700)
    }

    func testModesDoNotDependOnTheUmask() throws {
        // A umask that would leave the owner unable to write or enter the directory.
        let previous = umask(0o277)
        defer { umask(previous) }
        let root = try SpoolRoot.prepare(base + "/spool")
        XCTAssertEqual(mode(root.path), 0o700)
        XCTAssertEqual(mode(root.keysDirectory), 0o700)
    }

    func testTrailingSlashesAreIgnored() throws {
        let root = try SpoolRoot.prepare(base + "/spool//")
        XCTAssertEqual(root.path, base + "/spool")
        XCTAssertEqual(root.keysDirectory, base + "/spool/keys")
        XCTAssertEqual(mode(root.path), 0o700)
    }

    func testAcceptsAnExistingRootAndLeavesItsContents() throws {
        let path = base + "/spool"
        makeDirectory(path, mode: 0o700)
        try writeFile(path + "/state", "kept")
        let root = try SpoolRoot.prepare(path)
        XCTAssertEqual(mode(path), 0o700)
        XCTAssertEqual(mode(root.keysDirectory), 0o700)
        XCTAssertEqual(entries(path), ["keys", "state"])
        XCTAssertEqual(try String(contentsOfFile: path + "/state", encoding: .utf8), "kept")

        // Again, now with `keys` present; and a keys directory with content is left alone.
        try writeFile(root.keysDirectory + "/marker", "x")
        XCTAssertEqual(try SpoolRoot.prepare(path), root)
        XCTAssertEqual(entries(root.keysDirectory), ["marker"])
    }

    func testAcceptsARootOthersMayOnlyRead() throws {
        // Only writing is refused; whether others may read is the owner's choice, and it is kept.
        let path = base + "/spool"
        makeDirectory(path, mode: 0o755)
        _ = try SpoolRoot.prepare(path)
        XCTAssertEqual(mode(path), 0o755)
    }

    func testConcurrentPreparesOfOneRootAllSucceed() {
        // Processes sharing a spool start at the same time; the loser of the mkdir race must
        // accept the directory the winner created.
        for round in 0..<20 {
            let path = base + "/spool-\(round)"
            let failures = LockedList()
            DispatchQueue.concurrentPerform(iterations: 8) { _ in
                do {
                    _ = try SpoolRoot.prepare(path)
                } catch {
                    failures.append("\(error)")
                }
            }
            XCTAssertEqual(failures.items, [], path)
            XCTAssertEqual(mode(path), 0o700)
            XCTAssertEqual(mode(path + "/keys"), 0o700)
        }
    }

    // MARK: Refusing

    func testRefusesAGroupWritableRoot() {
        let path = base + "/spool"
        makeDirectory(path, mode: 0o770)
        assertMessage(
            refusal(path),
            contains: [path, "is writable by its group (mode 0770)", "chmod 700 \(path)"]
        )
        // Refused as found: nothing is changed or created.
        XCTAssertEqual(mode(path), 0o770)
        XCTAssertEqual(entries(path), [])
    }

    func testRefusesAnOtherWritableRoot() {
        let path = base + "/spool"
        makeDirectory(path, mode: 0o707)
        assertMessage(
            refusal(path),
            contains: [path, "is writable by other users (mode 0707)", "chmod 700 \(path)"]
        )
        XCTAssertEqual(mode(path), 0o707)
        XCTAssertEqual(entries(path), [])

        let both = base + "/both"
        makeDirectory(both, mode: 0o1777)
        assertMessage(
            refusal(both),
            contains: [both, "is writable by its group and other users (mode 1777)", "chmod 700 \(both)"]
        )
    }

    func testTheChmodHintIsQuotedForTheShell() {
        let path = base + "/my spool's"
        makeDirectory(path, mode: 0o770)
        assertMessage(refusal(path), contains: [path, "chmod 700 '\(base)/my spool'\\''s'"])
    }

    func testRefusesASymlinkToAGoodDirectory() throws {
        let target = base + "/real"
        makeDirectory(target, mode: 0o700)
        let link = base + "/spool"
        XCTAssertEqual(symlink(target, link), 0)

        for given in [link, link + "/"] {
            assertMessage(
                refusal(given),
                contains: [link, "is a symbolic link to \(target)", "ABE_SPOOL_DIR", "the real directory"]
            )
        }
        // The target is untouched, and the link is still a link.
        XCTAssertEqual(mode(target), 0o700)
        XCTAssertEqual(entries(target), [])
        XCTAssertEqual(status(link).map { $0.st_mode & S_IFMT == S_IFLNK }, true)
    }

    func testRefusesADanglingSymlink() {
        let link = base + "/spool"
        XCTAssertEqual(symlink(base + "/nowhere", link), 0)
        assertMessage(refusal(link), contains: [link, "is a symbolic link"])
        XCTAssertNil(status(base + "/nowhere"))
    }

    func testRefusesARegularFile() throws {
        let path = base + "/spool"
        try writeFile(path, "not a directory")
        assertMessage(refusal(path), contains: [path, "is not a directory (it is a regular file)", "ABE_SPOOL_DIR"])
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), "not a directory")
    }

    func testRefusesAMissingParentAndNamesIt() {
        let parent = base + "/missing"
        let path = parent + "/spool"
        assertMessage(
            refusal(path),
            contains: ["cannot create the spool root \(path)", "its parent directory \(parent) does not exist", "mkdir -p \(parent)"]
        )
        XCTAssertNil(status(parent))
        XCTAssertEqual(entries(base), [])

        // Two levels missing: still only the root would be created, and the error names its parent.
        assertMessage(refusal(base + "/a/b/spool"), contains: ["its parent directory \(base)/a/b does not exist"])
        XCTAssertEqual(entries(base), [])
    }

    func testRefusesARootBelowAFile() throws {
        try writeFile(base + "/file", "x")
        assertMessage(refusal(base + "/file/spool"), contains: ["cannot create the spool root \(base)/file/spool", "Not a directory"])
    }

    func testRefusesARelativePath() {
        for path in ["spool", "./spool", ""] {
            assertMessage(refusal(path), contains: ["is not an absolute path"])
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "spool"))
    }

    func testRefusesARootOwnedByAnotherUser() throws {
        let other: uid_t = 65_534
        if geteuid() == other { throw XCTSkip("the tests run as uid \(other), the uid this test gives the root") }
        let path = base + "/spool"
        makeDirectory(path, mode: 0o700)
        guard chown(path, other, gid_t(other)) == 0 else {
            throw XCTSkip("cannot chown a directory to uid \(other) (not running as root?): \(String(cString: strerror(errno)))")
        }
        assertMessage(
            refusal(path),
            contains: [path, "is owned by uid \(other), not by this process's user (uid \(geteuid()))", "chown \(geteuid()) \(path)"]
        )
        XCTAssertEqual(entries(path), [])
        XCTAssertEqual(status(path)?.st_uid, other)
    }

    // MARK: The keys directory

    func testRefusesAKeysSymlinkLeadingOutOfTheRoot() throws {
        let path = base + "/spool"
        let outside = base + "/outside"
        makeDirectory(path, mode: 0o700)
        makeDirectory(outside, mode: 0o700)
        XCTAssertEqual(symlink(outside, path + "/keys"), 0)
        assertMessage(refusal(path), contains: ["keys directory \(path)/keys is a symbolic link to \(outside)"])
        XCTAssertEqual(entries(outside), [])
    }

    func testRefusesAWritableOrForeignKeysDirectory() throws {
        let path = base + "/spool"
        makeDirectory(path, mode: 0o700)
        makeDirectory(path + "/keys", mode: 0o777)
        assertMessage(
            refusal(path),
            contains: ["keys directory \(path)/keys is writable by its group and other users (mode 0777)", "chmod 700 \(path)/keys"]
        )
        XCTAssertEqual(mode(path + "/keys"), 0o777)

        XCTAssertEqual(chmod(path + "/keys", 0o700), 0)
        if geteuid() != 65_534 && chown(path + "/keys", 65_534, 65_534) == 0 {
            assertMessage(refusal(path), contains: ["keys directory \(path)/keys is owned by uid 65534"])
        }
    }

    func testRefusesAKeysFile() throws {
        let path = base + "/spool"
        makeDirectory(path, mode: 0o700)
        try writeFile(path + "/keys", "x")
        assertMessage(refusal(path), contains: ["keys directory \(path)/keys is not a directory (it is a regular file)"])
    }
}

/// Strings appended from several threads.
private final class LockedList: Sendable {
    private let storage = Mutex<[String]>([])

    func append(_ item: String) {
        storage.withLock { $0.append(item) }
    }

    var items: [String] { storage.withLock { $0 } }
}
