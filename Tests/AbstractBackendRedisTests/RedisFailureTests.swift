import AbstractBackend
import AbstractBackendRedis
import Synchronization
import XCTest

/// The test's own redis-server is killed (`SIGKILL`) under a live backend and restarted on the
/// same port: calls fail with typed errors within a bounded time, never hang, and the same
/// backend instance works again afterwards.
final class RedisFailureTests: RedisTestCase {
    /// Publishes that were acknowledged before the kill must survive it.
    override var serverArguments: [String] { ["--appendonly", "yes", "--appendfsync", "always"] }

    /// The bound on how long any call may take while the server is down.
    private let failFast = Duration.seconds(3)

    func testPublishersGetTypedErrorsDuringAnOutageAndRecover() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("payments")
        let log = PublishLog()

        // Four publishers keep publishing through the kill and the restart.
        let publishers = (0..<4).map { worker in
            Task {
                var number = Int64(worker) * 1_000_000
                while !log.stop.load(ordering: .relaxed) {
                    number += 1
                    let started = ContinuousClock.now
                    do {
                        try await backend.publish(["n": .int(number)], to: key)
                        _ = log.acknowledged.withLock { $0.insert(number) }
                    } catch let error as MessageQueueError {
                        let took = ContinuousClock.now - started
                        log.failures.withLock { $0.append((error.code, took)) }
                        try? await Task.sleep(for: .milliseconds(20))
                    } catch {
                        XCTFail("publish threw an untyped error: \(error)")
                    }
                }
            }
        }
        try await Task.sleep(for: .milliseconds(300))
        let beforeKill = log.acknowledged.withLock { $0.count }
        XCTAssertGreaterThan(beforeKill, 0)

        await server.kill()
        let sawFailures = await eventually(within: .seconds(5)) { log.failures.withLock { $0.count } >= 8 }
        XCTAssertTrue(sawFailures, "publishing while the server is down did not fail")
        try await server.restart()
        let recovered = await eventually(within: .seconds(10)) {
            let now = log.acknowledged.withLock { $0.count }
            return now > beforeKill + 50 && log.failures.withLock { $0.count } > 0
        }
        log.stop.store(true, ordering: .relaxed)
        for publisher in publishers { await publisher.value }
        XCTAssertTrue(recovered, "the same backend did not publish again after the restart")

        for failure in log.failures.withLock({ $0 }) {
            XCTAssertTrue([.unavailable, .timeout].contains(failure.code), "a publish failed with \(failure.code)")
            XCTAssertLessThanOrEqual(failure.took, failFast, "a failing publish took \(failure.took)")
        }

        // Nothing acknowledged is lost: every number whose publish returned is in the stream.
        let stored = try await allNumbers(in: backend, key: key, expecting: log.acknowledged.withLock { $0.count })
        let missing = log.acknowledged.withLock { $0 }.subtracting(stored)
        XCTAssertTrue(missing.isEmpty, "\(missing.count) acknowledged publishes are missing after the restart, e.g. \(missing.prefix(5).sorted())")
    }

    func testConsumerKeepsRunningThroughAnOutage() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("events")
        let (received, task) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("listeners")))
        defer { task.cancel() }
        for number in 0..<5 { try await backend.publish(["n": .int(Int64(number))], to: key) }
        let first = await eventually(within: .seconds(5)) { received.messages.count == 5 }
        XCTAssertTrue(first)

        await server.kill()
        // While the server is down, a publish fails with a typed error within the bound...
        let started = ContinuousClock.now
        do {
            try await backend.publish(["n": 99], to: key)
            XCTFail("publish succeeded with the server down")
        } catch let error as MessageQueueError {
            XCTAssertTrue([.unavailable, .timeout].contains(error.code), "\(error)")
            XCTAssertLessThanOrEqual(ContinuousClock.now - started, failFast)
        }
        // ...and the consumer does not end: it waits for the server.
        try await Task.sleep(for: .milliseconds(500))
        XCTAssertFalse(received.ending.ended, "the consumer ended during the outage: \(String(describing: received.ending.error))")

        try await server.restart()
        let republished = await eventually(within: .seconds(10)) {
            (try? await backend.publish(["n": 5], to: key)) != nil
        }
        XCTAssertTrue(republished, "the same backend could not publish after the restart")
        for number in 6..<10 { try await backend.publish(["n": .int(Int64(number))], to: key) }
        let resumed = await eventually(within: .seconds(10)) { received.messages.count >= 10 }
        XCTAssertTrue(resumed, "the consumer received \(received.messages.count) of 10 after the restart")
        let numbers = Set(received.messages.compactMap { message -> Int64? in
            if case .int(let n)? = message.payload["n"] { return n }
            return nil
        })
        XCTAssertTrue(numbers.isSuperset(of: Set(0..<10)), "received \(numbers.sorted())")
        XCTAssertFalse(received.ending.ended, "the consumer ended: \(String(describing: received.ending.error))")
    }

    /// Acknowledgements fail at once while the command connection is in its reconnect backoff;
    /// once the backoff has passed they must try the server again, even when nothing else is
    /// sent on that connection (a consumer process that only acknowledges).
    func testAcknowledgementsResumeAfterAFailedReconnect() async throws {
        let backend = try makeBackend()
        let key = try MessageQueueKey("orders")
        for number in 0..<3 { try await backend.publish(["n": .int(Int64(number))], to: key) }
        var iterator = backend.consume(keys: [key], group: try ConsumerGroup("workers")).makeAsyncIterator()
        var held: [MessageQueueMessage] = []
        for _ in 0..<3 {
            let message = try await iterator.next()
            held.append(try XCTUnwrap(message))
        }
        let first = held[0].id
        XCTAssertEqual(try server.command("XPENDING", "orders", "workers", first, first, "1"), "*1")

        await server.kill()
        // The first publish loses the connection, a later one finds no server: the backoff starts,
        // and an acknowledgement fails at once.
        let backingOff = await eventually(within: .seconds(5)) {
            _ = try? await backend.publish(["n": 99], to: key)
            return (try? await held[1].ack()) == nil
        }
        XCTAssertTrue(backingOff, "acknowledging did not fail while the server was down")
        try await server.restart()

        // Only acknowledgements from here on, as in a consumer process.
        let acknowledged = await eventually(within: .seconds(10)) { (try? await held[0].ack()) != nil }
        XCTAssertTrue(acknowledged, "acknowledging still failed 10 s after the server came back")
        let applied = await eventually(within: .seconds(5)) {
            (try? self.server.command("XPENDING", "orders", "workers", first, first, "1")) == "*0"
        }
        XCTAssertTrue(applied, "the acknowledgement did not reach the restarted server")
    }

    func testCallsFailFastWhenTheServerNeverCameUp() async throws {
        await server.kill()
        let backend = try makeBackend()
        for attempt in 1...3 {
            let started = ContinuousClock.now
            do {
                try await backend.publish(["attempt": .int(Int64(attempt))], to: try MessageQueueKey("nowhere"))
                XCTFail("publish succeeded without a server")
            } catch let error as MessageQueueError {
                XCTAssertEqual(error.code, .unavailable, "\(error)")
                XCTAssertTrue(error.message.contains("127.0.0.1:\(server.port)"), error.message)
            }
            XCTAssertLessThanOrEqual(ContinuousClock.now - started, failFast)
        }
    }

    /// Every `n` in `key`, read by a fresh group.
    private func allNumbers(in backend: RedisBackend, key: MessageQueueKey, expecting count: Int) async throws -> Set<Int64> {
        let (reader, task) = Received.consuming(backend.consume(keys: [key], group: try ConsumerGroup("verifier")))
        defer { task.cancel() }
        _ = await eventually(within: .seconds(10)) { reader.messages.count >= count }
        try await Task.sleep(for: .milliseconds(300))
        return Set(reader.messages.compactMap { message -> Int64? in
            if case .int(let n)? = message.payload["n"] { return n }
            return nil
        })
    }
}

/// What the publishers of an outage test saw, shared between their tasks.
private final class PublishLog: Sendable {
    let acknowledged = Mutex<Set<Int64>>([])
    let failures = Mutex<[(code: MessageQueueError.Code, took: Duration)]>([])
    let stop = Atomic<Bool>(false)
}
