import AbstractBackend
@testable import AbstractBackendFileSpool
import Foundation
import XCTest

final class FileSpoolConfigurationTests: XCTestCase {
    // MARK: Helpers

    private static let directory = "/var/lib/test/spool"

    /// The configuration read from `extra` plus `ABE_SPOOL_DIR` (unless `extra` sets it).
    private func configuration(
        _ extra: [String: String] = [:],
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> FileSpoolConfiguration {
        var environment = extra
        if environment["ABE_SPOOL_DIR"] == nil { environment["ABE_SPOOL_DIR"] = Self.directory }
        do {
            return try FileSpoolConfiguration(environment: environment)
        } catch {
            XCTFail("\(environment) was rejected: \(error)", file: file, line: line)
            throw error
        }
    }

    /// The error thrown for `environment`; fails the test when none is thrown.
    private func error(_ environment: [String: String], file: StaticString = #filePath, line: UInt = #line) -> MessageQueueError? {
        do {
            let accepted = try FileSpoolConfiguration(environment: environment)
            XCTFail("accepted \(accepted)", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.code, .invalidConfiguration, file: file, line: line)
            return error
        }
    }

    private var currentDirectory: String { FileManager.default.currentDirectoryPath }

    // MARK: Defaults

    func testDefaults() throws {
        let coded = FileSpoolConfiguration(directory: Self.directory)
        XCTAssertEqual(coded.directory, Self.directory)
        XCTAssertEqual(coded.fsync, .always)
        XCTAssertEqual(coded.fsyncInterval, .milliseconds(100))
        XCTAssertEqual(coded.visibilityTimeout, .seconds(30))
        XCTAssertEqual(coded.maxDeliveries, 5)
        XCTAssertEqual(coded.prefetch, 256)
        XCTAssertEqual(coded.segmentSize, 64 * 1024 * 1024)
        XCTAssertEqual(coded.defaultGroup, .defaultGroup)
        XCTAssertNoThrow(try coded.validate())

        var fromEnvironment = try configuration()
        XCTAssertEqual(fromEnvironment, coded)
        fromEnvironment.prefetch = 9
        XCTAssertNotEqual(fromEnvironment, coded)
        XCTAssertEqual(
            coded.description,
            "FileSpoolConfiguration(directory: \"/var/lib/test/spool\", fsync: always, fsyncInterval: 100ms, "
                + "visibilityTimeout: 30s, maxDeliveries: 5, prefetch: 256, segmentSize: 67108864, defaultGroup: \"default\")"
        )
        XCTAssertEqual(coded.description, "\(coded)")
    }

    func testBlankVariablesMeanDefaults() throws {
        let blank = try configuration([
            "ABE_SPOOL_FSYNC": "", "ABE_SPOOL_FSYNC_INTERVAL_MS": " ", "ABE_SPOOL_VISIBILITY_TIMEOUT": "",
            "ABE_SPOOL_MAX_DELIVERIES": "", "ABE_SPOOL_PREFETCH": "\t", "ABE_SPOOL_SEGMENT_BYTES": "",
        ])
        XCTAssertEqual(blank, FileSpoolConfiguration(directory: Self.directory))
    }

    // MARK: Every variable

    func testAllVariables() throws {
        let configuration = try configuration([
            "ABE_SPOOL_DIR": "/srv/spool",
            "ABE_SPOOL_FSYNC": "interval",
            "ABE_SPOOL_FSYNC_INTERVAL_MS": "250",
            "ABE_SPOOL_VISIBILITY_TIMEOUT": "2m",
            "ABE_SPOOL_MAX_DELIVERIES": "10",
            "ABE_SPOOL_PREFETCH": "1024",
            "ABE_SPOOL_SEGMENT_BYTES": "1_048_576",
            "ABE_DEFAULT_GROUP": "workers",
        ])
        XCTAssertEqual(configuration.directory, "/srv/spool")
        XCTAssertEqual(configuration.fsync, .interval)
        XCTAssertEqual(configuration.fsyncInterval, .milliseconds(250))
        XCTAssertEqual(configuration.visibilityTimeout, .seconds(120))
        XCTAssertEqual(configuration.maxDeliveries, 10)
        XCTAssertEqual(configuration.prefetch, 1024)
        XCTAssertEqual(configuration.segmentSize, 1 << 20)
        XCTAssertEqual(configuration.defaultGroup, try ConsumerGroup("workers"))
        XCTAssertEqual(
            configuration.description,
            "FileSpoolConfiguration(directory: \"/srv/spool\", fsync: interval, fsyncInterval: 250ms, "
                + "visibilityTimeout: 120s, maxDeliveries: 10, prefetch: 1024, segmentSize: 1048576, defaultGroup: \"workers\")"
        )
    }

    func testFsyncPolicies() throws {
        let cases: [(String, FileSpoolConfiguration.FsyncPolicy)] = [
            ("always", .always), ("interval", .interval), ("never", .never),
            ("NEVER", .never), (" Interval ", .interval), ("Always", .always),
        ]
        for (value, expected) in cases {
            XCTAssertEqual(try configuration(["ABE_SPOOL_FSYNC": value]).fsync, expected, value)
        }
        XCTAssertEqual(FileSpoolConfiguration.FsyncPolicy.allCases.map(\.description), ["always", "interval", "never"])
    }

    func testRangeBoundsAreAccepted() throws {
        let low = try configuration([
            "ABE_SPOOL_FSYNC_INTERVAL_MS": "1", "ABE_SPOOL_VISIBILITY_TIMEOUT": "1ms", "ABE_SPOOL_MAX_DELIVERIES": "1",
            "ABE_SPOOL_PREFETCH": "1", "ABE_SPOOL_SEGMENT_BYTES": "4096",
        ])
        XCTAssertEqual(low.fsyncInterval, .milliseconds(1))
        XCTAssertEqual(low.visibilityTimeout, .milliseconds(1))
        XCTAssertEqual(low.maxDeliveries, 1)
        XCTAssertEqual(low.prefetch, 1)
        XCTAssertEqual(low.segmentSize, 4096)

        let high = try configuration([
            "ABE_SPOOL_FSYNC_INTERVAL_MS": "60000", "ABE_SPOOL_VISIBILITY_TIMEOUT": "168h", "ABE_SPOOL_MAX_DELIVERIES": "1000000",
            "ABE_SPOOL_PREFETCH": "65536", "ABE_SPOOL_SEGMENT_BYTES": "1073741824",
        ])
        XCTAssertEqual(high.fsyncInterval, .seconds(60))
        XCTAssertEqual(high.visibilityTimeout, .seconds(7 * 86_400))
        XCTAssertEqual(high.maxDeliveries, 1_000_000)
        XCTAssertEqual(high.prefetch, 65_536)
        XCTAssertEqual(high.segmentSize, 1 << 30)
    }

    // MARK: The directory

    func testMissingDirectory() {
        let expected = "ABE_SPOOL_DIR is not set; set it to the spool's directory, e.g. ABE_SPOOL_DIR=/var/lib/myapp/spool "
            + "(created with mode 0700 if missing; its parent must exist)"
        for environment in [[:], ["ABE_SPOOL_DIR": ""], ["ABE_SPOOL_DIR": "   "], ["ABE_SPOOL_FSYNC": "never"]] {
            XCTAssertEqual(error(environment)?.message, expected, "\(environment)")
        }
        // The missing directory is reported before any other bad variable.
        XCTAssertEqual(error(["ABE_SPOOL_PREFETCH": "0"])?.message, expected)
    }

    func testRelativeDirectoryIsResolved() throws {
        let current = currentDirectory
        XCTAssertTrue(current.hasPrefix("/"), current)
        let base = current == "/" ? "" : current
        let cases: [(String, String)] = [
            ("spool", base + "/spool"),
            ("./spool", base + "/spool"),
            ("a/./b//c/", base + "/a/b/c"),
            (".", current),
            ("../spool", base + "/../spool"),
            (".abe-spool", base + "/.abe-spool"),
        ]
        for (given, expected) in cases {
            XCTAssertEqual(try configuration(["ABE_SPOOL_DIR": given]).directory, expected, given)
            XCTAssertEqual(FileSpoolConfiguration(directory: given).directory, expected, given)
        }
        let resolved = try configuration(["ABE_SPOOL_DIR": "spool"])
        XCTAssertEqual(resolved.description.hasPrefix("FileSpoolConfiguration(directory: \"\(base)/spool\""), true, resolved.description)
    }

    func testAbsoluteDirectoryIsTidied() throws {
        let cases: [(String, String)] = [
            ("/srv/spool", "/srv/spool"),
            ("/srv/spool/", "/srv/spool"),
            ("//srv///spool//", "/srv/spool"),
            ("/srv/./spool", "/srv/spool"),
            ("/srv/../spool", "/srv/../spool"),
            ("  /srv/spool  ", "/srv/spool"),
            ("/srv/my spool/ü", "/srv/my spool/ü"),
            ("/", "/"),
        ]
        for (given, expected) in cases {
            XCTAssertEqual(try configuration(["ABE_SPOOL_DIR": given]).directory, expected, given)
        }
    }

    func testTildeIsRefused() {
        XCTAssertEqual(
            error(["ABE_SPOOL_DIR": "~/spool"])?.message,
            "ABE_SPOOL_DIR=\"~/spool\" starts with \"~\", which is not expanded here; use an absolute path such as /home/<user>/spool"
        )
        XCTAssertEqual(error(["ABE_SPOOL_DIR": "~"])?.message.hasPrefix("ABE_SPOOL_DIR=\"~\" starts with \"~\""), true)
    }

    // MARK: Bad values

    func testBadVariablesAreNamed() {
        let cases: [(String, String, String)] = [
            ("ABE_SPOOL_FSYNC", "sometimes", "ABE_SPOOL_FSYNC=\"sometimes\" is not one of: always, interval, never"),
            ("ABE_SPOOL_FSYNC", "true", "ABE_SPOOL_FSYNC=\"true\" is not one of: always, interval, never"),
            ("ABE_SPOOL_FSYNC_INTERVAL_MS", "0", "ABE_SPOOL_FSYNC_INTERVAL_MS=\"0\" is out of range; use 1 to 60000"),
            ("ABE_SPOOL_FSYNC_INTERVAL_MS", "60001", "ABE_SPOOL_FSYNC_INTERVAL_MS=\"60001\" is out of range; use 1 to 60000"),
            ("ABE_SPOOL_FSYNC_INTERVAL_MS", "-5", "ABE_SPOOL_FSYNC_INTERVAL_MS=\"-5\" is out of range; use 1 to 60000"),
            ("ABE_SPOOL_FSYNC_INTERVAL_MS", "100ms", "ABE_SPOOL_FSYNC_INTERVAL_MS=\"100ms\" is not a whole number; use e.g. 100"),
            ("ABE_SPOOL_FSYNC_INTERVAL_MS", "1.5", "ABE_SPOOL_FSYNC_INTERVAL_MS=\"1.5\" is not a whole number; use e.g. 100"),
            ("ABE_SPOOL_VISIBILITY_TIMEOUT", "0s", "ABE_SPOOL_VISIBILITY_TIMEOUT=\"0s\" is out of range; use 1ms to 604800s"),
            ("ABE_SPOOL_VISIBILITY_TIMEOUT", "169h", "ABE_SPOOL_VISIBILITY_TIMEOUT=\"169h\" is out of range; use 1ms to 604800s"),
            (
                "ABE_SPOOL_VISIBILITY_TIMEOUT", "soon",
                "ABE_SPOOL_VISIBILITY_TIMEOUT=\"soon\" is not a duration; use e.g. 30s, 250ms, 2m or a number of seconds"
            ),
            ("ABE_SPOOL_MAX_DELIVERIES", "0", "ABE_SPOOL_MAX_DELIVERIES=\"0\" is out of range; use 1 to 1000000"),
            ("ABE_SPOOL_MAX_DELIVERIES", "1000001", "ABE_SPOOL_MAX_DELIVERIES=\"1000001\" is out of range; use 1 to 1000000"),
            ("ABE_SPOOL_MAX_DELIVERIES", "five", "ABE_SPOOL_MAX_DELIVERIES=\"five\" is not a whole number; use e.g. 5"),
            ("ABE_SPOOL_PREFETCH", "0", "ABE_SPOOL_PREFETCH=\"0\" is out of range; use 1 to 65536"),
            ("ABE_SPOOL_PREFETCH", "65537", "ABE_SPOOL_PREFETCH=\"65537\" is out of range; use 1 to 65536"),
            ("ABE_SPOOL_PREFETCH", "lots", "ABE_SPOOL_PREFETCH=\"lots\" is not a whole number; use e.g. 256"),
            ("ABE_SPOOL_SEGMENT_BYTES", "4095", "ABE_SPOOL_SEGMENT_BYTES=\"4095\" is out of range; use 4096 to 1073741824"),
            (
                "ABE_SPOOL_SEGMENT_BYTES", "1073741825",
                "ABE_SPOOL_SEGMENT_BYTES=\"1073741825\" is out of range; use 4096 to 1073741824"
            ),
            ("ABE_SPOOL_SEGMENT_BYTES", "64MiB", "ABE_SPOOL_SEGMENT_BYTES=\"64MiB\" is not a whole number; use e.g. 67108864"),
            (
                "ABE_DEFAULT_GROUP", "",
                "ABE_DEFAULT_GROUP: invalid consumer group \"\": it is empty; use 1 to 255 UTF-8 bytes"
            ),
        ]
        for (variable, value, expected) in cases {
            XCTAssertEqual(error(["ABE_SPOOL_DIR": Self.directory, variable: value])?.message, expected, "\(variable)=\(value)")
        }
    }

    func testValidateNamesTheProperty() {
        var relative = FileSpoolConfiguration(directory: Self.directory)
        relative.directory = "spool"
        let cases: [(FileSpoolConfiguration, String)] = [
            (
                FileSpoolConfiguration(directory: ""),
                "FileSpoolConfiguration.directory is empty; use the absolute path of the spool's directory"
            ),
            (relative, "FileSpoolConfiguration.directory is the relative path \"spool\"; use an absolute path"),
            (
                FileSpoolConfiguration(directory: "/a\u{0}b"),
                "FileSpoolConfiguration.directory contains a NUL character; use a path without one"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, fsyncInterval: .zero),
                "FileSpoolConfiguration.fsyncInterval is 0s; use whole milliseconds from 1ms to 60000ms"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, fsyncInterval: .microseconds(1500)),
                "FileSpoolConfiguration.fsyncInterval is 0.0015s; use whole milliseconds from 1ms to 60000ms"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, fsyncInterval: .seconds(61)),
                "FileSpoolConfiguration.fsyncInterval is 61s; use whole milliseconds from 1ms to 60000ms"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, visibilityTimeout: .zero),
                "FileSpoolConfiguration.visibilityTimeout is 0s; use 1ms to 7 days"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, maxDeliveries: 0),
                "FileSpoolConfiguration.maxDeliveries is 0; use 1 to 1000000"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, prefetch: 65_537),
                "FileSpoolConfiguration.prefetch is 65537; use 1 to 65536"
            ),
            (
                FileSpoolConfiguration(directory: Self.directory, segmentSize: 1024),
                "FileSpoolConfiguration.segmentSize is 1024 bytes; use 4096 (4 KiB) to 1073741824 (1 GiB)"
            ),
        ]
        for (configuration, expected) in cases {
            XCTAssertThrowsError(try configuration.validate()) { error in
                XCTAssertEqual((error as? MessageQueueError)?.code, .invalidConfiguration)
                XCTAssertEqual((error as? MessageQueueError)?.message, expected)
            }
        }
        XCTAssertNoThrow(try FileSpoolConfiguration(directory: Self.directory, fsync: .never, fsyncInterval: .seconds(60)).validate())
    }

    func testIntervalIsAcceptedWithEveryPolicy() throws {
        // Ignored unless the policy is `interval`, so switching policies needs no other change.
        for policy in ["always", "never"] {
            let configuration = try configuration(["ABE_SPOOL_FSYNC": policy, "ABE_SPOOL_FSYNC_INTERVAL_MS": "5"])
            XCTAssertEqual(configuration.fsyncInterval, .milliseconds(5))
        }
    }

    // MARK: Documentation

    func testVariablesAreDocumented() {
        XCTAssertEqual(
            FileSpoolConfiguration.variables.map(\.name),
            [
                "ABE_SPOOL_DIR", "ABE_SPOOL_FSYNC", "ABE_SPOOL_FSYNC_INTERVAL_MS", "ABE_SPOOL_VISIBILITY_TIMEOUT",
                "ABE_SPOOL_MAX_DELIVERIES", "ABE_SPOOL_PREFETCH", "ABE_SPOOL_SEGMENT_BYTES", "ABE_DEFAULT_GROUP",
            ]
        )
        XCTAssertEqual(
            [
                FileSpoolConfiguration.Variable.directory, FileSpoolConfiguration.Variable.fsync,
                FileSpoolConfiguration.Variable.fsyncIntervalMilliseconds, FileSpoolConfiguration.Variable.visibilityTimeout,
                FileSpoolConfiguration.Variable.maxDeliveries, FileSpoolConfiguration.Variable.prefetch,
                FileSpoolConfiguration.Variable.segmentSize, ConsumerGroup.defaultGroupVariable,
            ],
            FileSpoolConfiguration.variables.map(\.name)
        )
        XCTAssertTrue(FileSpoolConfiguration.variables.allSatisfy { !$0.summary.isEmpty && !$0.isSecret })
        let fsync = FileSpoolConfiguration.variables[1].summary
        for word in ["always", "interval", "never", "default"] {
            XCTAssertTrue(fsync.contains(word), fsync)
        }
    }
}
