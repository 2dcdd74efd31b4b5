import AbstractBackend
import AbstractBackendInMemory
import Logging
import ServiceLifecycle
import Synchronization
import XCTest

/// What the consumer runner does on its own, over the in-memory provider; the behaviour shared
/// with every provider is in the contract suite (ContractTests/ConsumerChecks.swift).
final class MessageConsumerTests: XCTestCase {
    private let key = try! MessageQueueKey("consumer-tests")
    private let group = try! ConsumerGroup("runner")

    func testInvalidSettingsAreRejectedWithWhatToFix() throws {
        let backend = InMemoryBackend()
        let cases: [(String, () throws -> MessageConsumer)] = [
            ("concurrency is 0", { try MessageConsumer(backend: backend, concurrency: 0) { _ in } }),
            ("shutdownTimeout is negative", { try MessageConsumer(backend: backend, shutdownTimeout: .seconds(-1)) { _ in } }),
            ("keys is empty", { try MessageConsumer(backend: backend, keys: []) { _ in } }),
        ]
        for (expected, make) in cases {
            XCTAssertThrowsError(try make()) { error in
                let queueError = error as? MessageQueueError
                XCTAssertEqual(queueError?.code, .invalidConfiguration)
                XCTAssertTrue(queueError?.message.contains(expected) ?? false, "\(error)")
            }
        }
    }

    func testCancellingTheRunningTaskLetsTheRunningHandlerFinish() async throws {
        let backend = InMemoryBackend()
        for n in 1...3 { try await backend.publish(["n": .int(Int64(n))], to: key) }
        let seen = Mutex<[(n: Int64, cancelledAtEnd: Bool)]>([])
        let started = Mutex(false)
        let consumer = try MessageConsumer(backend: backend, group: group, keys: [key]) { message in
            started.withLock { $0 = true }
            try await Task.sleep(for: .milliseconds(300))
            seen.withLock { $0.append((message.payload["n"]?.intValue ?? 0, Task.isCancelled)) }
        }
        let running = Task { try await consumer.run() }
        try await waitUntil { started.withLock { $0 } }
        running.cancel()
        try await running.value

        let handled = seen.withLock { $0 }
        XCTAssertEqual(handled.map(\.n), [1], "cancellation stops pulling, so only the running handler completes")
        XCTAssertEqual(handled.first?.cancelledAtEnd, false, "the running handler is not cancelled while the shutdown timeout lasts")
        // Message 1 was acknowledged; 2 and 3 were never handled and go to the next member.
        let rest = try await receive(2, from: backend)
        XCTAssertEqual(rest.map { $0.payload["n"]?.intValue }, [2, 3])
        await backend.close()
    }

    func testGracefulShutdownOfTheServiceGroupStopsTheConsumer() async throws {
        let backend = InMemoryBackend()
        try await backend.publish(["n": 1], to: key)
        let handled = Mutex(0)
        let consumer = try MessageConsumer(backend: backend, group: group, keys: [key]) { _ in handled.withLock { $0 += 1 } }
        let services = ServiceGroup(configuration: ServiceGroupConfiguration(services: [consumer], logger: Logger(label: "test")))
        let running = Task { try await services.run() }
        try await waitUntil { handled.withLock { $0 } == 1 }
        await services.triggerGracefulShutdown()
        try await running.value
        await backend.close()
    }

    func testClosingTheBackendEndsRunWithTheClosedError() async throws {
        let backend = InMemoryBackend()
        let consumer = try MessageConsumer(backend: backend, group: group, keys: [key]) { _ in }
        let running = Task { try await consumer.run() }
        try await Task.sleep(for: .milliseconds(50))
        await backend.close()
        do {
            try await running.value
            XCTFail("run() returned normally after the backend was closed")
        } catch let error as MessageQueueError {
            XCTAssertEqual(error.code, .closed)
        }
    }

    // MARK: Helpers

    private func waitUntil(timeout: Duration = .seconds(5), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { return XCTFail("condition not met within \(timeout)") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Receives `count` messages as a new member of the group, failing after 5 s instead of hanging.
    private func receive(_ count: Int, from backend: InMemoryBackend) async throws -> [MessageQueueMessage] {
        let (key, group) = (key, group)
        return try await withThrowingTaskGroup(of: [MessageQueueMessage]?.self) { tasks in
            tasks.addTask {
                var received: [MessageQueueMessage] = []
                for try await message in backend.consume(keys: [key], group: group) {
                    try await message.ack()
                    received.append(message)
                    if received.count == count { break }
                }
                return received
            }
            tasks.addTask {
                try await Task.sleep(for: .seconds(5))
                return nil
            }
            defer { tasks.cancelAll() }
            guard let received = try await tasks.next() ?? nil else {
                XCTFail("fewer than \(count) messages arrived within 5 s")
                return []
            }
            return received
        }
    }
}
