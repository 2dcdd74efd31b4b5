import AbstractBackend
import AbstractBackendRedis
import XCTest

/// Passwords never appear in errors or logs, whether they are right or wrong.
final class RedisSecretTests: RedisTestCase {
    private let password = "s3cret-Pa55-for-tests"
    private let wrongPassword = "wr0ng-Pa55-for-tests"

    override var serverArguments: [String] { ["--requirepass", password] }

    func testWrongPasswordFailsClearlyWithoutShowingIt() async throws {
        let url = "redis://:\(wrongPassword)@127.0.0.1:\(server.port)/0"
        let backend = try makeBackend(url: url)
        let error = await publishError(backend)
        XCTAssertEqual(error?.code, .invalidConfiguration, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("REDIS_URL") ?? false, "the error says what to fix: \(String(describing: error))")

        var iterator = backend.consume(keys: [try MessageQueueKey("secret")], group: nil).makeAsyncIterator()
        var consumeError: (any Error)?
        do { _ = try await iterator.next() } catch { consumeError = error }
        XCTAssertEqual((consumeError as? MessageQueueError)?.code, .invalidConfiguration, "\(String(describing: consumeError))")

        assertNoSecret(in: [String(describing: error), String(describing: consumeError), "\(backend.configuration)", logs.allText])
    }

    func testMissingPasswordIsReportedAsSuch() async throws {
        let backend = try makeBackend()
        let error = await publishError(backend)
        XCTAssertEqual(error?.code, .invalidConfiguration, "\(String(describing: error))")
        XCTAssertTrue(error?.message.contains("requires a password") ?? false, "\(String(describing: error))")
    }

    func testRightPasswordWorksAndStaysHidden() async throws {
        let backend = try makeBackend(url: "redis://:\(password)@127.0.0.1:\(server.port)/0")
        let key = try MessageQueueKey("secret")
        try await backend.publish(["ok": true], to: key)
        var iterator = backend.consume(keys: [key], group: nil).makeAsyncIterator()
        let message = try await iterator.next()
        XCTAssertEqual(message?.payload, ["ok": true])
        try await message?.ack()
        assertNoSecret(in: ["\(backend.configuration)", backend.configuration.redactedURL, logs.allText])
    }

    private func publishError(_ backend: RedisBackend) async -> MessageQueueError? {
        do {
            try await backend.publish(["x": 1], to: try MessageQueueKey("secret"))
            return nil
        } catch {
            return error as? MessageQueueError
        }
    }

    private func assertNoSecret(in texts: [String], file: StaticString = #filePath, line: UInt = #line) {
        for text in texts {
            XCTAssertFalse(text.contains(password), "the password appears in: \(text)", file: file, line: line)
            XCTAssertFalse(text.contains(wrongPassword), "the wrong password appears in: \(text)", file: file, line: line)
        }
    }
}
