import AbstractBackend
import AbstractBackendRedis
import XCTest

final class RedisConfigurationTests: XCTestCase {
    // MARK: Helpers

    private func configuration(
        _ url: String,
        _ extra: [String: String] = [:],
        file: StaticString = #filePath,
        line: UInt = #line
    ) throws -> RedisConfiguration {
        var environment = extra
        environment["REDIS_URL"] = url
        do {
            return try RedisConfiguration(environment: environment)
        } catch {
            XCTFail("\(url) was rejected: \(error)", file: file, line: line)
            throw error
        }
    }

    /// The error thrown for `environment`; fails the test when none (or another type) is thrown.
    private func error(_ environment: [String: String], file: StaticString = #filePath, line: UInt = #line) -> MessageQueueError? {
        do {
            let accepted = try RedisConfiguration(environment: environment)
            XCTFail("accepted \(accepted)", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.code, .invalidConfiguration, file: file, line: line)
            return error
        }
    }

    /// Asserts that `url` is rejected with a message naming `REDIS_URL` and containing `problem`.
    private func assertRejected(_ url: String, _ problem: String, file: StaticString = #filePath, line: UInt = #line) {
        guard let error = error(["REDIS_URL": url], file: file, line: line) else { return }
        XCTAssertTrue(error.message.hasPrefix("REDIS_URL="), "\(error.message)", file: file, line: line)
        XCTAssertTrue(error.message.contains(problem), "\(url): \(error.message) does not contain \(problem)", file: file, line: line)
    }

    // MARK: Accepted URLs

    func testTCPForms() throws {
        let plain = try configuration("redis://localhost")
        XCTAssertEqual(plain.endpoint, .tcp(host: "localhost", port: 6379))
        XCTAssertNil(plain.username)
        XCTAssertNil(plain.password)
        XCTAssertEqual(plain.database, 0)

        XCTAssertEqual(try configuration("redis://localhost:6380").endpoint, .tcp(host: "localhost", port: 6380))
        XCTAssertEqual(try configuration("redis://10.0.0.7/").endpoint, .tcp(host: "10.0.0.7", port: 6379))
        XCTAssertEqual(try configuration("redis://10.0.0.7/").database, 0)
        XCTAssertEqual(try configuration("redis://redis.internal/3").database, 3)
        XCTAssertEqual(try configuration("redis://redis.internal?db=4").database, 4)
        XCTAssertEqual(try configuration("redis://redis.internal/4?db=4").database, 4)
        XCTAssertEqual(try configuration("  REDIS://My-Host_1.example.com:1/15  ").endpoint, .tcp(host: "My-Host_1.example.com", port: 1))
        XCTAssertEqual(try configuration("redis://h:65535").endpoint, .tcp(host: "h", port: 65_535))

        let full = try configuration("redis://app:pw@redis.internal:7000/5")
        XCTAssertEqual(full.endpoint, .tcp(host: "redis.internal", port: 7000))
        XCTAssertEqual(full.username, "app")
        XCTAssertEqual(full.password, "pw")
        XCTAssertEqual(full.database, 5)

        let passwordOnly = try configuration("redis://:pw@host")
        XCTAssertNil(passwordOnly.username)
        XCTAssertEqual(passwordOnly.password, "pw")

        let userOnly = try configuration("redis://app@host/1")
        XCTAssertEqual(userOnly.username, "app")
        XCTAssertNil(userOnly.password)

        let emptyPassword = try configuration("redis://app:@host")
        XCTAssertEqual(emptyPassword.username, "app")
        XCTAssertNil(emptyPassword.password)
    }

    func testIPv6Hosts() throws {
        XCTAssertEqual(try configuration("redis://[::1]").endpoint, .tcp(host: "::1", port: 6379))
        let full = try configuration("redis://app:pw@[2001:db8::1]:7000/2")
        XCTAssertEqual(full.endpoint, .tcp(host: "2001:db8::1", port: 7000))
        XCTAssertEqual(full.username, "app")
        XCTAssertEqual(full.password, "pw")
        XCTAssertEqual(full.database, 2)
        XCTAssertEqual(try configuration("redis://[::ffff:127.0.0.1]:6380/0").endpoint, .tcp(host: "::ffff:127.0.0.1", port: 6380))
        XCTAssertEqual(full.redactedURL, "redis://app:***@[2001:db8::1]:7000/2")
    }

    func testPercentEncodedCredentials() throws {
        let encoded = try configuration("redis://us%40er:p%40ss%3Aw%2Ford%25@host:6379/1")
        XCTAssertEqual(encoded.username, "us@er")
        XCTAssertEqual(encoded.password, "p@ss:w/ord%")
        XCTAssertEqual(try configuration("redis://:p%C3%A4ss@host").password, "päss")
        // An unencoded "@" or ":" in the password still works: the user part ends at the last "@".
        XCTAssertEqual(try configuration("redis://app:s3cr3t-P@ss:x@host").password, "s3cr3t-P@ss:x")
        XCTAssertEqual(try configuration("redis://app:s3cr3t-P@ss:x@host").endpoint, .tcp(host: "host", port: 6379))
    }

    func testUnixSockets() throws {
        let plain = try configuration("unix:///var/run/redis/redis.sock")
        XCTAssertEqual(plain.endpoint, .unixSocket(path: "/var/run/redis/redis.sock"))
        XCTAssertEqual(plain.database, 0)
        XCTAssertNil(plain.password)

        let withDatabase = try configuration("unix:///tmp/redis.sock?db=3")
        XCTAssertEqual(withDatabase.endpoint, .unixSocket(path: "/tmp/redis.sock"))
        XCTAssertEqual(withDatabase.database, 3)

        let withUser = try configuration("unix://app:pw@/tmp/redis.sock?db=1")
        XCTAssertEqual(withUser.endpoint, .unixSocket(path: "/tmp/redis.sock"))
        XCTAssertEqual(withUser.username, "app")
        XCTAssertEqual(withUser.password, "pw")
        XCTAssertEqual(withUser.database, 1)
        XCTAssertEqual(withUser.redactedURL, "unix://app:***@/tmp/redis.sock?db=1")

        XCTAssertEqual(try configuration("unix:///tmp/my%20redis.sock").endpoint, .unixSocket(path: "/tmp/my redis.sock"))
    }

    func testRedactedURLParsesBack() throws {
        for url in [
            "redis://localhost", "redis://us%40er@[::1]:7000/9", "redis://h/2", "unix:///tmp/a%20b.sock?db=4",
            "unix://app@/tmp/redis.sock",
        ] {
            let original = try configuration(url)
            XCTAssertFalse(original.redactedURL.contains("***"))
            let reparsed = try configuration(original.redactedURL)
            XCTAssertEqual(reparsed, original, "\(url) → \(original.redactedURL)")
        }
    }

    // MARK: Rejected URLs

    func testMissingURL() {
        for environment in [[:], ["REDIS_URL": ""], ["REDIS_URL": "   "]] {
            let message = error(environment)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("REDIS_URL is not set"), message)
        }
    }

    func testRejectsMissingHost() {
        for url in ["redis://", "redis:///0", "redis://user:pw@/0", "redis://:6379", "redis://[]:6379", "redis://?db=1"] {
            assertRejected(url, "has no host")
        }
    }

    func testRejectsBadPorts() {
        XCTAssertEqual(
            error(["REDIS_URL": "redis://host:abc/0"])?.message,
            "REDIS_URL=\"redis://host:***/0\" has a port that is not a number; use 1 to 65535 (default 6379)"
        )
        for url in ["redis://host:-1", "redis://host:+80", "redis://host:6379x", "redis://[::1]:port"] {
            assertRejected(url, "has a port that is not a number")
        }
        for url in ["redis://host:0", "redis://host:65536", "redis://host:99999999999999999999999", "redis://u:p@[::1]:70000"] {
            assertRejected(url, "has a port out of range; use 1 to 65535")
        }
        assertRejected("redis://host:/0", "has an empty port")
        XCTAssertEqual(
            error(["REDIS_URL": "redis://app:pw@host:0/1"])?.message,
            "REDIS_URL=\"redis://app:***@host:0/1\" has a port out of range; use 1 to 65535 (default 6379)"
        )
    }

    func testRejectsBadDatabases() {
        XCTAssertEqual(
            error(["REDIS_URL": "redis://host/-1"])?.message,
            "REDIS_URL=\"redis://host/-1\" has the database number -1, which is negative; use 0 to 2147483647"
        )
        XCTAssertEqual(
            error(["REDIS_URL": "redis://host:6379/zero"])?.message,
            "REDIS_URL=\"redis://host:6379/zero\" has the database \"zero\", which is not a whole number; use 0 to 2147483647, e.g. /0"
        )
        assertRejected("redis://host/1.5", "is not a whole number")
        assertRejected("redis://host/ 1", "is not a whole number")
        assertRejected("redis://host?db=x", "is not a whole number")
        assertRejected("redis://host?db=", "has an empty database number")
        assertRejected("redis://host?db", "without a value")
        assertRejected("unix:///tmp/redis.sock?db=-2", "is negative")
        assertRejected("redis://host/99999999999", "is out of range")
        assertRejected("redis://host/1/2", "the only path is the database number")
        assertRejected("redis://host/1?db=2", "names two databases")
    }

    func testRejectsUnknownSchemes() {
        XCTAssertEqual(
            error(["REDIS_URL": "http://host:6379"])?.message,
            "REDIS_URL=\"http://host:6379\" has the unknown scheme \"http://\"; use "
                + "redis://[user[:password]@]host[:port][/db] or unix:///path/to/redis.sock[?db=N]"
        )
        assertRejected("valkey://host", "has the unknown scheme \"valkey://\"")
        assertRejected("tcp://host", "has the unknown scheme")
    }

    func testRejectsEmptyOrRelativeUnixPaths() {
        for url in ["unix://", "unix:///", "unix://?db=1", "unix://app:pw@"] {
            assertRejected(url, "has no socket path")
        }
        assertRejected("unix://tmp/redis.sock", "has no absolute socket path")
        assertRejected("unix:///tmp/%zz.sock", "invalid percent-encoding in the socket path")
        assertRejected("unix:///tmp/a%00b.sock", "NUL")
        assertRejected("unix:///" + String(repeating: "x", count: 200), "Unix socket paths are limited to")
    }

    func testRejectsGarbage() {
        for url in ["not a url", "localhost:6379", "redis:/host", "://host", "redis//host", "1redis://host", "re dis://host"] {
            assertRejected(url, "is not a Redis URL")
        }
        assertRejected("redis://ho st", "characters not allowed in a host name")
        assertRejected("redis://hôst", "characters not allowed in a host name")
        assertRejected("redis://host#frag", "has a fragment")
        assertRejected("redis://host?timeout=5", "has the query parameter \"timeout\", which is not supported")
        assertRejected("redis://[::1", "without its closing")
        assertRejected("redis://[::1]x", "has text after the IPv6 address")
        assertRejected("redis://[zz::1]", "which is not an IPv6 address")
        assertRejected("redis://::1", "without brackets")
        assertRejected("redis://user:%zz@host", "invalid percent-encoding in the password")
        assertRejected("redis://us%4@host", "invalid percent-encoding in the user name")
        assertRejected("redis://:%FF@host", "invalid percent-encoding in the password")
        assertRejected("redis://host/0?x=a@b", "has an \"@\" after the host")
    }

    // MARK: TLS

    func testTLSIsRefused() {
        for environment in [
            ["REDIS_URL": "rediss://host:6380"],
            ["REDIS_URL": "REDISS://app:pw@host"],
            ["REDIS_URL": "redis://host", "REDIS_SSL": "true"],
            ["REDIS_URL": "redis://host", "REDIS_SSL": "TRUE"],
            ["REDIS_URL": "redis://host", "REDIS_SSL": "1"],
            ["REDIS_URL": "redis://host", "REDIS_SSL": "yes"],
            ["REDIS_URL": "redis://host", "REDIS_SSL": " on "],
            ["REDIS_SSL": "true"],
        ] {
            let message = error(environment)?.message ?? ""
            XCTAssertTrue(message.contains("TLS needs hiredis ≥ 1.0"), message)
            XCTAssertTrue(message.contains("Debian 12's libhiredis 0.14 has none"), message)
            XCTAssertTrue(message.contains("stunnel"), message)
            XCTAssertTrue(message.contains("plain redis:// URL on a trusted network"), message)
            XCTAssertTrue(message.hasPrefix(environment["REDIS_SSL"] == nil ? "REDIS_URL=" : "REDIS_SSL="), message)
            XCTAssertFalse(message.contains(":pw@"), message)
        }
        XCTAssertTrue(error(["REDIS_URL": "rediss://app:pw@host"])?.message.hasPrefix("REDIS_URL=\"rediss://app:***@host\" asks for TLS (rediss://)") == true)
        XCTAssertNoThrow(try configuration("redis://host", ["REDIS_SSL": "false"]))
        XCTAssertNoThrow(try configuration("redis://host", ["REDIS_SSL": "0"]))
        XCTAssertNoThrow(try configuration("redis://host", ["REDIS_SSL": ""]))
        XCTAssertTrue(error(["REDIS_URL": "redis://host", "REDIS_SSL": "maybe"])?.message.hasPrefix("REDIS_SSL=\"maybe\" is not a Boolean") == true)
    }

    // MARK: Other variables

    func testRedisPasswordOverridesTheURL() throws {
        let overridden = try configuration("redis://app:from-url@host", ["REDIS_PASSWORD": "from-env"])
        XCTAssertEqual(overridden.username, "app")
        XCTAssertEqual(overridden.password, "from-env")
        XCTAssertEqual(try configuration("redis://host", ["REDIS_PASSWORD": "from-env"]).password, "from-env")
        XCTAssertEqual(try configuration("unix:///tmp/r.sock", ["REDIS_PASSWORD": "from-env"]).password, "from-env")
        // Used exactly as given; empty means unset.
        XCTAssertEqual(try configuration("redis://host", ["REDIS_PASSWORD": " spaced "]).password, " spaced ")
        XCTAssertEqual(try configuration("redis://:from-url@host", ["REDIS_PASSWORD": ""]).password, "from-url")
    }

    func testDefaults() throws {
        let coded = RedisConfiguration()
        XCTAssertEqual(coded.endpoint, .tcp(host: "127.0.0.1", port: 6379))
        XCTAssertNil(coded.username)
        XCTAssertNil(coded.password)
        XCTAssertEqual(coded.database, 0)
        XCTAssertEqual(coded.maxConnections, 4)
        XCTAssertEqual(coded.visibilityTimeout, .seconds(30))
        XCTAssertEqual(coded.maxDeliveries, 5)
        XCTAssertEqual(coded.blockTime, .seconds(1))
        XCTAssertNil(coded.socketTimeoutOverride)
        XCTAssertEqual(coded.socketTimeout, .seconds(6))
        XCTAssertEqual(coded.retention, .acknowledgedByAllGroups)
        XCTAssertEqual(coded.keyPrefix, "")
        XCTAssertEqual(coded.defaultGroup, .defaultGroup)
        XCTAssertNoThrow(try coded.validate())

        var fromEnvironment = try configuration("redis://127.0.0.1")
        XCTAssertEqual(fromEnvironment, coded)
        fromEnvironment.maxDeliveries = 9
        XCTAssertNotEqual(fromEnvironment, coded)
        XCTAssertEqual(
            coded.description,
            "RedisConfiguration(url: redis://127.0.0.1:6379/0, maxConnections: 4, visibilityTimeout: 30s, maxDeliveries: 5, "
                + "blockTime: 1s, socketTimeout: 6s (derived), retention: acknowledged by all groups, keyPrefix: \"\", "
                + "defaultGroup: \"default\")"
        )
    }

    func testAllVariables() throws {
        let configuration = try configuration(
            "redis://app@host:6380/2",
            [
                "REDIS_MAX_CONNECTIONS": "16",
                "ABE_REDIS_VISIBILITY_TIMEOUT": "2m",
                "ABE_REDIS_MAX_DELIVERIES": "10",
                "ABE_REDIS_BLOCK_TIME": "250ms",
                "ABE_REDIS_SOCKET_TIMEOUT": "3s",
                "ABE_REDIS_MAX_ENTRIES": "1_000_000",
                "ABE_REDIS_KEY_PREFIX": "billing:",
                "ABE_DEFAULT_GROUP": "workers",
            ]
        )
        XCTAssertEqual(configuration.maxConnections, 16)
        XCTAssertEqual(configuration.visibilityTimeout, .seconds(120))
        XCTAssertEqual(configuration.maxDeliveries, 10)
        XCTAssertEqual(configuration.blockTime, .milliseconds(250))
        XCTAssertEqual(configuration.socketTimeoutOverride, .seconds(3))
        XCTAssertEqual(configuration.socketTimeout, .seconds(3))
        XCTAssertEqual(configuration.retention, .maxEntries(1_000_000))
        XCTAssertEqual(configuration.keyPrefix, "billing:")
        XCTAssertEqual(configuration.defaultGroup, try ConsumerGroup("workers"))
        XCTAssertEqual(
            configuration.description,
            "RedisConfiguration(url: redis://app@host:6380/2, maxConnections: 16, visibilityTimeout: 120s, maxDeliveries: 10, "
                + "blockTime: 250ms, socketTimeout: 3s, retention: at most 1000000 entries per key, keyPrefix: \"billing:\", "
                + "defaultGroup: \"workers\")"
        )
    }

    func testBadVariablesAreNamed() {
        let url = "redis://host"
        let cases: [(String, String, String)] = [
            ("REDIS_MAX_CONNECTIONS", "0", "REDIS_MAX_CONNECTIONS=\"0\" is out of range; use 1 to 1024"),
            ("REDIS_MAX_CONNECTIONS", "1025", "REDIS_MAX_CONNECTIONS=\"1025\" is out of range; use 1 to 1024"),
            ("REDIS_MAX_CONNECTIONS", "many", "REDIS_MAX_CONNECTIONS=\"many\" is not a whole number; use e.g. 4"),
            ("ABE_REDIS_VISIBILITY_TIMEOUT", "0s", "ABE_REDIS_VISIBILITY_TIMEOUT=\"0s\" is out of range"),
            ("ABE_REDIS_VISIBILITY_TIMEOUT", "soon", "ABE_REDIS_VISIBILITY_TIMEOUT=\"soon\" is not a duration"),
            ("ABE_REDIS_MAX_DELIVERIES", "0", "ABE_REDIS_MAX_DELIVERIES=\"0\" is out of range"),
            ("ABE_REDIS_BLOCK_TIME", "0", "ABE_REDIS_BLOCK_TIME=\"0\" is out of range; use 1ms to 60s"),
            ("ABE_REDIS_BLOCK_TIME", "2m", "ABE_REDIS_BLOCK_TIME=\"2m\" is out of range; use 1ms to 60s"),
            ("ABE_REDIS_SOCKET_TIMEOUT", "never", "ABE_REDIS_SOCKET_TIMEOUT=\"never\" is not a duration"),
            ("ABE_REDIS_MAX_ENTRIES", "0", "ABE_REDIS_MAX_ENTRIES=\"0\" is out of range"),
            ("ABE_REDIS_MAX_ENTRIES", "lots", "ABE_REDIS_MAX_ENTRIES=\"lots\" is not a whole number"),
            ("ABE_REDIS_KEY_PREFIX", "a\u{7}b", "ABE_REDIS_KEY_PREFIX=\"a\\u{07}b\" contains a control character"),
            ("ABE_REDIS_KEY_PREFIX", String(repeating: "p", count: 300), "ABE_REDIS_KEY_PREFIX="),
            ("ABE_DEFAULT_GROUP", "", "ABE_DEFAULT_GROUP: invalid consumer group"),
        ]
        for (variable, value, expected) in cases {
            let message = error(["REDIS_URL": url, variable: value])?.message ?? ""
            XCTAssertTrue(message.hasPrefix(expected), "\(variable)=\(value): \(message)")
        }
    }

    // MARK: Socket timeout

    func testSocketTimeoutIsAlwaysLongerThanBlockTime() throws {
        XCTAssertEqual(try configuration("redis://h", ["ABE_REDIS_BLOCK_TIME": "10s"]).socketTimeout, .seconds(15))
        XCTAssertEqual(try configuration("redis://h", ["ABE_REDIS_BLOCK_TIME": "60s"]).socketTimeout, .seconds(65))
        XCTAssertEqual(
            try configuration("redis://h", ["ABE_REDIS_BLOCK_TIME": "500ms", "ABE_REDIS_SOCKET_TIMEOUT": "501ms"]).socketTimeout,
            .milliseconds(501)
        )
        for socket in ["1s", "500ms"] {
            let message = error(["REDIS_URL": "redis://h", "ABE_REDIS_SOCKET_TIMEOUT": socket])?.message ?? ""
            XCTAssertTrue(
                message.hasPrefix("ABE_REDIS_SOCKET_TIMEOUT=\"\(socket)\" must be longer than ABE_REDIS_BLOCK_TIME (1s)"), message
            )
        }
        let message = error(["REDIS_URL": "redis://h", "ABE_REDIS_BLOCK_TIME": "5s", "ABE_REDIS_SOCKET_TIMEOUT": "4s"])?.message ?? ""
        XCTAssertTrue(message.contains("must be longer than ABE_REDIS_BLOCK_TIME (5s)"), message)
        XCTAssertTrue(message.contains("leave it unset to use the block time + 5s"), message)

        var coded = RedisConfiguration(blockTime: .seconds(2), socketTimeout: .seconds(2))
        XCTAssertThrowsError(try coded.validate()) { error in
            let message = (error as? MessageQueueError)?.message ?? ""
            XCTAssertTrue(message.hasPrefix("RedisConfiguration.socketTimeoutOverride (2s) must be longer than blockTime (2s)"), message)
        }
        coded.socketTimeoutOverride = nil
        XCTAssertNoThrow(try coded.validate())
        XCTAssertEqual(coded.socketTimeout, .seconds(7))
        XCTAssertGreaterThan(coded.socketTimeout, coded.blockTime)
        coded.blockTime = .seconds(60)
        XCTAssertEqual(coded.socketTimeout, .seconds(65))
    }

    func testValidateNamesTheProperty() {
        let cases: [(RedisConfiguration, String)] = [
            (RedisConfiguration(endpoint: .tcp(host: "", port: 6379)), "RedisConfiguration.endpoint has an empty host"),
            (RedisConfiguration(endpoint: .tcp(host: "h", port: 0)), "RedisConfiguration.endpoint has the port 0"),
            (RedisConfiguration(endpoint: .unixSocket(path: "")), "RedisConfiguration.endpoint has no socket path"),
            (RedisConfiguration(endpoint: .unixSocket(path: "tmp/r.sock")), "RedisConfiguration.endpoint has a relative socket path"),
            (RedisConfiguration(database: -1), "RedisConfiguration.database is -1"),
            (RedisConfiguration(maxConnections: 0), "RedisConfiguration.maxConnections is 0; use 1 to 1024"),
            (RedisConfiguration(visibilityTimeout: .zero), "RedisConfiguration.visibilityTimeout is 0s"),
            (RedisConfiguration(maxDeliveries: 0), "RedisConfiguration.maxDeliveries is 0"),
            (RedisConfiguration(blockTime: .zero), "RedisConfiguration.blockTime is 0s"),
            (RedisConfiguration(retention: .maxEntries(0)), "RedisConfiguration.retention caps a stream at 0 entries"),
            (RedisConfiguration(keyPrefix: "a\nb"), "RedisConfiguration.keyPrefix contains a control character"),
        ]
        for (configuration, expected) in cases {
            XCTAssertThrowsError(try configuration.validate()) { error in
                let message = (error as? MessageQueueError)?.message ?? ""
                XCTAssertTrue(message.hasPrefix(expected), "\(message) does not start with \(expected)")
            }
        }
    }

    // MARK: Documentation

    func testVariablesAreDocumented() {
        let names = RedisConfiguration.variables.map(\.name)
        XCTAssertEqual(
            names,
            [
                "REDIS_URL", "REDIS_PASSWORD", "REDIS_SSL", "REDIS_MAX_CONNECTIONS", "ABE_REDIS_VISIBILITY_TIMEOUT",
                "ABE_REDIS_MAX_DELIVERIES", "ABE_REDIS_BLOCK_TIME", "ABE_REDIS_SOCKET_TIMEOUT", "ABE_REDIS_MAX_ENTRIES",
                "ABE_REDIS_KEY_PREFIX", "ABE_DEFAULT_GROUP",
            ]
        )
        XCTAssertEqual(RedisConfiguration.variables.filter(\.isSecret).map(\.name), ["REDIS_URL", "REDIS_PASSWORD"])
        XCTAssertTrue(RedisConfiguration.variables.allSatisfy { !$0.summary.isEmpty })
    }

    // MARK: Redaction

    func testStaticRedaction() {
        let cases: [(String, String)] = [
            ("redis://user:pw@host:6379/2", "redis://user:***@host:6379/2"),
            ("redis://:pw@host", "redis://:***@host"),
            ("redis://user@host", "redis://user@host"),
            ("redis://host:6379/0", "redis://host:6379/0"),
            ("redis://user:p@ss@host", "redis://user:***@host"),
            ("redis://user:pa/ss@host/0", "redis://user:***@host/0"),
            ("redis://user:password", "redis://user:***"),
            ("redis://user:123456", "redis://user:***"),
            ("redis://[::1]:secret", "redis://[::1]:***"),
            ("redis://host/0?password=pw&db=1", "redis://host/0?password=***&db=1"),
            ("user:pw@host", "user:***@host"),
            ("a b:pw@host://x", "***@host://x"),
            ("unix://user:pw@/tmp/r.sock", "unix://user:***@/tmp/r.sock"),
        ]
        for (url, expected) in cases {
            XCTAssertEqual(RedisConfiguration.redactedURL(url), expected, url)
        }
    }

    func testThePasswordAppearsNowhere() throws {
        let secret = "s3cr3t-P@ss"
        let encoded = "s3cr3t-P%40ss"
        var texts: [String] = []

        func record(_ configuration: RedisConfiguration) {
            texts.append(configuration.description)
            texts.append(configuration.debugDescription)
            texts.append(String(describing: configuration))
            texts.append(String(reflecting: configuration))
            texts.append("\(configuration)")
            texts.append(configuration.redactedURL)
            var dumped = ""
            dump(configuration, to: &dumped)
            texts.append(dumped)
        }
        func recordError(_ environment: [String: String]) {
            guard let error = error(environment) else { return }
            texts += [error.message, error.description, String(describing: error), String(reflecting: error), "\(error)"]
        }

        // Accepted configurations.
        for url in [
            "redis://admin:\(encoded)@redis.internal:6379/2",
            "redis://admin:\(secret)@redis.internal:6379/2",
            "redis://:\(encoded)@[::1]:6380",
            "unix://admin:\(encoded)@/tmp/redis.sock?db=3",
        ] {
            let accepted = try configuration(url)
            XCTAssertEqual(accepted.password, secret)
            record(accepted)
        }
        for (url, password) in [("redis://admin:wrong@redis.internal", "wrong"), ("redis://redis.internal", nil)] {
            XCTAssertEqual(try configuration(url).password, password)
            let overridden = try configuration(url, ["REDIS_PASSWORD": secret])
            XCTAssertEqual(overridden.password, secret)
            record(overridden)
        }
        // Without "@host" the unencoded "@" splits the password: host "ss", password "s3cr3t-P".
        let split = try configuration("redis://admin:\(secret)")
        XCTAssertEqual(split.endpoint, .tcp(host: "ss", port: 6379))
        record(split)

        // Rejected ones: malformed URLs with the password in them, TLS, and bad neighbours.
        for url in [
            "redis://admin:\(secret)@redis.internal:63x9/0",
            "redis://admin:\(encoded)@redis.internal:0/0",
            "redis://admin:\(encoded)@:6379",
            "redis://admin:\(encoded)@host/-1",
            "redis://admin:\(encoded)@host/zero",
            "redis://admin:\(encoded)@host?timeout=1",
            "redis://admin:\(encoded)@host#x",
            "redis://admin:\(encoded)@[::1",
            "redis://admin:\(encoded)",
            "redis://admin:\(encoded)%zz@host",
            "redis://host/0?password=\(encoded)",
            "rediss://admin:\(encoded)@host:6380",
            "http://admin:\(encoded)@host",
            "admin:\(encoded)@host",
            "unix://admin:\(encoded)@",
            "unix://admin:\(encoded)@tmp/redis.sock",
        ] {
            recordError(["REDIS_URL": url])
            recordError(["REDIS_URL": url, "REDIS_PASSWORD": secret])
            XCTAssertFalse(RedisConfiguration.redactedURL(url).contains("s3cr3t"), RedisConfiguration.redactedURL(url))
        }
        recordError(["REDIS_URL": "redis://host:bad", "REDIS_PASSWORD": secret])
        recordError(["REDIS_URL": "redis://admin:\(encoded)@host", "REDIS_SSL": "true"])
        recordError(["REDIS_URL": "redis://admin:\(encoded)@host", "REDIS_PASSWORD": secret, "REDIS_MAX_CONNECTIONS": "0"])
        recordError(["REDIS_URL": "redis://admin:\(encoded)@host", "ABE_REDIS_SOCKET_TIMEOUT": "1ms"])

        var invalid = try configuration("redis://admin:\(encoded)@host")
        invalid.maxConnections = 0
        XCTAssertThrowsError(try invalid.validate()) { texts.append("\($0)") }

        XCTAssertGreaterThan(texts.count, 100)
        for text in texts {
            XCTAssertFalse(text.contains(secret), text)
            XCTAssertFalse(text.contains(encoded), text)
            XCTAssertFalse(text.contains("s3cr3t"), text)
        }
    }
}
