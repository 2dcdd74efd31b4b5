import AbstractBackend
@testable import AbstractBackendRedis
import Logging
import TestSupport
import XCTest

/// A test case with a private redis-server (started in `setUp`, stopped in `tearDown`), a log
/// capture, and raw access to the server through the provider's own connection type.
class RedisTestCase: XCTestCase {
    var server: RedisServerProcess!
    let logs = CapturedLogs()
    private var backends: [RedisBackend] = []
    private var rawConnection: RedisConnection?

    /// Arguments for the private server, e.g. persistence settings.
    var serverArguments: [String] { [] }

    override func setUp() async throws {
        try await super.setUp()
        try XCTSkipUnless(RedisServerProcess.isAvailable, "redis-server is not on PATH: install it (apt-get install redis-server) or run Scripts/test")
        server = try RedisServerProcess(extraArguments: serverArguments)
        try await server.start()
    }

    override func tearDown() async throws {
        for backend in backends { await backend.close() }
        backends = []
        if let rawConnection { await rawConnection.close() }
        rawConnection = nil
        await server?.stop()
        server = nil
        try await super.tearDown()
    }

    /// A configuration for the private server with short timeouts, adjusted by `configure`.
    func configuration(url: String? = nil, _ configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisConfiguration {
        var configuration = try RedisConfiguration(environment: [RedisConfiguration.Variable.url: url ?? server.url])
        configuration.visibilityTimeout = .seconds(5)
        configuration.blockTime = .milliseconds(200)
        configure(&configuration)
        return configuration
    }

    /// A backend on the private server, logging into ``logs``; closed in `tearDown`.
    func makeBackend(url: String? = nil, _ configure: (inout RedisConfiguration) -> Void = { _ in }) throws -> RedisBackend {
        let backend = try RedisBackend(configuration: configuration(url: url, configure), logger: logs.logger(label: "abe.redis"))
        backends.append(backend)
        return backend
    }

    /// Sends one command to the private server and returns its reply.
    func raw(_ arguments: String...) async throws -> RedisValue {
        let connection: RedisConnection
        if let rawConnection {
            connection = rawConnection
        } else {
            connection = RedisConnection(configuration: try configuration(), role: "test", spins: false, logger: Logger(label: "test"))
            rawConnection = connection
        }
        var command = RESPCommand()
        command.append(arguments)
        return try await connection.values(command)[0]
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    func eventually(within timeout: Duration, _ condition: () async throws -> Bool) async rethrows -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return try await condition()
    }
}

/// Collects what a consuming task receives, acknowledging each message.
final class Received: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [MessageQueueMessage] = []
    private var endError: (any Error)?
    private var ended = false

    var messages: [MessageQueueMessage] { lock.withLock { storage } }
    var ending: (ended: Bool, error: (any Error)?) { lock.withLock { (ended, endError) } }

    /// Starts a task that consumes `sequence` and acknowledges every message.
    static func consuming<S: AsyncSequence & Sendable>(_ sequence: S) -> (Received, Task<Void, Never>) where S.Element == MessageQueueMessage {
        let received = Received()
        let task = Task {
            do {
                for try await message in sequence {
                    received.lock.withLock { received.storage.append(message) }
                    try? await message.ack()
                }
                received.lock.withLock { received.ended = true }
            } catch {
                received.lock.withLock {
                    received.ended = true
                    received.endError = error
                }
            }
        }
        return (received, task)
    }
}
