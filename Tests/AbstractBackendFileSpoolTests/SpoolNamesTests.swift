import AbstractBackend
@testable import AbstractBackendFileSpool
import XCTest

/// Keys and group names become file-name components that cannot escape their directory, fit in
/// `NAME_MAX`, stay distinct, and decode back when they are short enough to be plain.
final class SpoolNamesTests: XCTestCase {
    /// The hostile keys, plus long, multi-byte and case-only variants.
    private static let namedKeys: [String] = [
        "../x", "a/b", "..", ".", ".hidden", "%41", "a b", "~", "a.b-c_d",
        "🚀📦", "注文/東京", "\u{E9}", "e\u{301}", "orders", "Orders", "ORDERS",
        String(repeating: "🚀", count: 128),
        String(repeating: "注", count: 170) + "ab",
        String(repeating: "k", count: 512),
        String(repeating: "x", count: 511) + "1",
        String(repeating: "x", count: 511) + "2",
    ]

    /// Fails unless `component` is one safe, bounded file name.
    private func assertSafe(_ component: String, for name: String, file: StaticString = #filePath, line: UInt = #line) {
        let bytes = Array(component.utf8)
        let context = "component \(component) of \(name.debugDescription)"
        XCTAssertFalse(bytes.isEmpty, context, file: file, line: line)
        XCTAssertLessThanOrEqual(bytes.count, 255, context, file: file, line: line)
        XCTAssertFalse(bytes.contains(UInt8(ascii: "/")), context, file: file, line: line)
        XCTAssertFalse(bytes.contains(0), context, file: file, line: line)
        XCTAssertNotEqual(bytes.first, UInt8(ascii: "."), context, file: file, line: line)
        XCTAssertNotEqual(component, ".", context, file: file, line: line)
        XCTAssertNotEqual(component, "..", context, file: file, line: line)
    }

    /// Fails unless a plain component decodes to `name` and a hashed one refuses to decode.
    private func assertDecodes(_ component: String, to name: String, file: StaticString = #filePath, line: UInt = #line) {
        if component.contains("~") {
            XCTAssertNil(SpoolNames.decode(component), component, file: file, line: line)
        } else {
            XCTAssertEqual(
                SpoolNames.decode(component).map { Array($0.utf8) }, Array(name.utf8),
                component, file: file, line: line
            )
        }
    }

    func testNamedKeysGiveSafeComponentsThatDecode() throws {
        for name in Self.namedKeys {
            let key = try MessageQueueKey(name)
            let component = SpoolNames.component(forKey: key)
            assertSafe(component, for: name)
            assertDecodes(component, to: name)
            assertSafe(SpoolNames.component(forKey: key.deadLetterKey), for: key.deadLetterKey.rawValue)
        }
    }

    func testEncodingOfShortNames() throws {
        // Pairs, not a dictionary: "\u{E9}" and "e\u{301}" are equal as dictionary keys.
        let expected = [
            ("../x", "%2E.%2Fx"), ("a/b", "a%2Fb"), ("..", "%2E."), (".", "%2E"), (".hidden", "%2Ehidden"),
            ("%41", "%2541"), ("a b", "a%20b"), ("~", "%7E"), ("a.b-c_d", "a.b-c_d"), ("\u{E9}", "%C3%A9"),
            ("e\u{301}", "e%CC%81"), ("🚀", "%F0%9F%9A%80"), ("orders:dead-letter", "orders%3Adead-letter"),
        ]
        for (name, component) in expected {
            XCTAssertEqual(SpoolNames.component(forKey: try MessageQueueKey(name)), component, name)
        }
    }

    func testCanonicallyEquivalentKeysStayDistinct() throws {
        // Swift's String equality treats these as equal; the file system sees different bytes.
        XCTAssertNotEqual(
            SpoolNames.component(forKey: try MessageQueueKey("\u{E9}")),
            SpoolNames.component(forKey: try MessageQueueKey("e\u{301}"))
        )
    }

    func testKeysThatDifferOnlyByCaseGetDifferentComponents() throws {
        let components = try ["orders", "Orders", "ORDERS"].map { SpoolNames.component(forKey: try MessageQueueKey($0)) }
        XCTAssertEqual(Set(components).count, 3)
    }

    func testLongKeysAreCutAtAWholeEscapeAndHashed() throws {
        let ascii = SpoolNames.component(forKey: try MessageQueueKey(String(repeating: "k", count: 512)))
        // The hash is part of the on-disk format: it must not change between releases.
        XCTAssertEqual(ascii, String(repeating: "k", count: 160) + "~243129491c3cbd25")

        for name in [String(repeating: "🚀", count: 128), String(repeating: "注", count: 170) + "ab"] {
            let component = SpoolNames.component(forKey: try MessageQueueKey(name))
            let parts = component.split(separator: "~", omittingEmptySubsequences: false)
            XCTAssertEqual(parts.count, 2, component)
            XCTAssertEqual(parts[1].count, 16, component)
            XCTAssertTrue(parts[1].allSatisfy { $0.isHexDigit && !$0.isUppercase }, component)
            // Every byte of these names is escaped, so whole triples fill at most 160 bytes.
            XCTAssertEqual(parts[0].utf8.count, 159, component)
            XCTAssertTrue(parts[0].hasPrefix("%"), component)
            XCTAssertEqual(parts[0].utf8.count % 3, 0, component)
        }
    }

    func testLongKeysDifferingOnlyInTheLastByteGetDifferentComponents() throws {
        let first = SpoolNames.component(forKey: try MessageQueueKey(String(repeating: "x", count: 511) + "1"))
        let second = SpoolNames.component(forKey: try MessageQueueKey(String(repeating: "x", count: 511) + "2"))
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(first.prefix(160), second.prefix(160))
    }

    func testGroupsUseTheSameEncoding() throws {
        XCTAssertEqual(SpoolNames.component(forGroup: try ConsumerGroup("../workers")), "%2E.%2Fworkers")
        let longest = String(repeating: "\u{E9}", count: 127) + "a"
        let component = SpoolNames.component(forGroup: try ConsumerGroup(longest))
        assertSafe(component, for: longest)
        assertDecodes(component, to: longest)
    }

    func testDecodeRejectsWhatTheEncoderNeverWrites() {
        let malformed = [
            "", "%", "%4", "%G1", "%2f", "%41", "a/b", ".x", "..", "a%20b~0123456789abcdef",
            "%FF", "%C3", "a b",
        ]
        for component in malformed {
            XCTAssertNil(SpoolNames.decode(component), component.debugDescription)
        }
    }

    /// A key of 1 to 512 UTF-8 bytes of random non-control scalars, rich in `/`, `.` and `%`.
    private func randomKey(using generator: inout some RandomNumberGenerator) throws -> MessageQueueKey {
        let length = Int.random(in: 1...512, using: &generator)
        var scalars = String.UnicodeScalarView()
        var byteCount = 0
        while byteCount < length {
            var scalar: Unicode.Scalar
            switch Int.random(in: 0..<4, using: &generator) {
            case 0:
                scalar = ["/", ".", "%"].randomElement(using: &generator)!
            case 1:
                scalar = Unicode.Scalar(UInt8.random(in: 0x20...0x7E, using: &generator))
            default:
                // Any scalar; surrogates are not scalars and controls are not valid in keys.
                repeat {
                    scalar = Unicode.Scalar(UInt32.random(in: 0x80...0x10FFFF, using: &generator)) ?? "."
                } while scalar.properties.generalCategory == .control
            }
            if byteCount + scalar.utf8.count > length { scalar = "." }
            scalars.append(scalar)
            byteCount += scalar.utf8.count
        }
        return try MessageQueueKey(String(scalars))
    }

    /// Every path below `directory`, relative to it, with its type as `lstat` reports it
    /// (so a symlink is listed as one and not followed); `skipping` is listed but not entered.
    private func listing(of directory: String, skipping skipped: String? = nil) throws -> [String: FileAttributeType] {
        var entries: [String: FileAttributeType] = [:]
        var pending = [""]
        while let relative = pending.popLast() {
            let absolute = relative.isEmpty ? directory : directory + "/" + relative
            for name in try FileManager.default.contentsOfDirectory(atPath: absolute) {
                let path = relative.isEmpty ? name : relative + "/" + name
                let type = try FileManager.default.attributesOfItem(atPath: directory + "/" + path)[.type] as? FileAttributeType
                entries[path] = type
                if type == .typeDirectory && path != skipped { pending.append(path) }
            }
        }
        return entries
    }

    func testDirectoriesForRandomKeysStayInsideTheRoot() throws {
        // The root's parent is a fresh directory too, so nothing else writes to it during the
        // test and an escape is seen exactly; the sibling gives `../x` something to land beside.
        let parent = FileManager.default.temporaryDirectory.path + "/spool-names-\(UUID().uuidString)"
        let root = parent + "/root"
        try FileManager.default.createDirectory(atPath: parent + "/sibling", withIntermediateDirectories: true)
        try Data("x".utf8).write(to: URL(fileURLWithPath: parent + "/sibling/x"))
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let before = try listing(of: parent)

        var generator = SystemRandomNumberGenerator()
        var keys = try Self.namedKeys.map { try MessageQueueKey($0) }
        for _ in 0..<200 { keys.append(try randomKey(using: &generator)) }
        // Distinct by bytes: Swift's String equality would merge canonically equivalent keys.
        var componentsByBytes: [[UInt8]: String] = [:]
        for key in keys {
            let component = SpoolNames.component(forKey: key)
            assertSafe(component, for: key.rawValue)
            assertDecodes(component, to: key.rawValue)
            componentsByBytes[Array(key.rawValue.utf8)] = component
        }
        let components = Set(componentsByBytes.values)
        XCTAssertEqual(components.count, componentsByBytes.count, "two distinct keys share a component")
        // Failures are recorded, not thrown, so an escape is still caught by the listings below.
        for component in components {
            XCTAssertNoThrow(try FileManager.default.createDirectory(atPath: root + "/" + component, withIntermediateDirectories: false))
        }

        let after = try listing(of: parent, skipping: "root")
        XCTAssertEqual(after, before, "something was created, changed or removed outside the root")
        let inside = try listing(of: root)
        XCTAssertEqual(inside.count, componentsByBytes.count, "the root holds exactly one entry per distinct key")
        XCTAssertEqual(Set(inside.keys), components)
        XCTAssertTrue(inside.values.allSatisfy { $0 == .typeDirectory }, "only directories, no symlinks or files")
    }
}
