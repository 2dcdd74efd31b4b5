import AbstractBackend
import AbstractBackendRedis
import XCTest

/// The server hangs up while a large command is still being written (an oversized bulk is a
/// protocol error to Redis): the caller gets a typed error, the process lives on, and the same
/// backend publishes again once its connection is back.
final class RedisBrokenPipeTests: RedisTestCase {
    func testAServerThatHangsUpMidWriteFailsThePublishAndTheBackendRecovers() async throws {
        _ = try server.command("CONFIG", "SET", "proto-max-bulk-len", "1mb")
        let backend = try makeBackend()
        let key = try MessageQueueKey("oversized")
        let large: MessageQueuePayload = ["blob": .string(String(repeating: "x", count: 8 << 20))]
        do {
            try await backend.publish(large, to: key)
            XCTFail("an 8 MiB publish succeeded although the server accepts bulks of 1 MiB at most")
        } catch let error as MessageQueueError {
            XCTAssertFalse(error.message.isEmpty)
        }
        let recovered = await eventually(within: .seconds(10)) {
            (try? await backend.publish(["small": 1], to: key)) != nil
        }
        XCTAssertTrue(recovered, "the backend did not publish again after the server hung up")
        await backend.close()
    }
}
