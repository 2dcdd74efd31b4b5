import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendRedis
import Foundation
import Synchronization
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Issue 5, acceptance: a consumer process (`abe-consumer-worker`, a `MessageConsumer`) is killed
/// with SIGKILL while its handlers run; another consumer of the same group, in this process, then
/// processes every message whose handler had not finished — nothing is lost.
///
/// A handler that printed `handled <n>` returned, but the kill may have landed before the
/// consumer's acknowledgement reached the provider, so such a message may come again; it is the
/// only kind of duplicate allowed, and those seen are reported.
final class ConsumerKillTests: XCTestCase {
    private static let workerExecutable = "abe-consumer-worker"
    private static let messageCount = 40
    private static let workerConcurrency = 4
    /// Long enough that a kill sent right after a handler starts lands while it runs, whatever
    /// the scheduling on a loaded machine.
    private static let holdMilliseconds = 500
    /// Short, so that the killed worker's deliveries come back soon; four times the hold, so that
    /// nothing times out in the worker before it is killed.
    private static let visibilityTimeout = Duration.seconds(2)
    /// ``visibilityTimeout`` as the providers' variables spell it.
    private static let visibilityTimeoutVariable = "\(visibilityTimeout.components.seconds)s"
    /// Bound of every wait: a hung provider fails the test instead of hanging it.
    private static let deadline = Duration.seconds(60)

    private let workers = ChildProcessGroup()
    private var temporaryDirectory: String?

    override func setUpWithError() throws {
        try super.setUpWithError()
        guard ChildProcess.executablePath(Self.workerExecutable) != nil else {
            throw ChildProcess.notFound(Self.workerExecutable)
        }
    }

    override func tearDown() async throws {
        for worker in await workers.terminateAll() {
            XCTFail("could not reap \(worker.summary)")
        }
        if let temporaryDirectory { try? FileManager.default.removeItem(atPath: temporaryDirectory) }
        try await super.tearDown()
    }

    func testFileSpoolConsumerKilledWhileHandlingLosesNothing() async throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("abe-consumer-kill-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        temporaryDirectory = parent
        let spool = parent + "/spool"
        try await checkKilledConsumerLosesNothing(
            key: "jobs",
            // QUEUE_BACKEND, because a REDIS_URL inherited from the test's environment would win.
            workerVariables: [
                "QUEUE_BACKEND": "file-spool", "ABE_SPOOL_DIR": spool,
                "ABE_SPOOL_VISIBILITY_TIMEOUT": Self.visibilityTimeoutVariable,
            ],
            // The spool's deadline is set by the member that claims: a long one keeps this
            // process's own deliveries from expiring, while the killed worker's still expire
            // after its short one.
            testVariables: ["QUEUE_BACKEND": "file-spool", "ABE_SPOOL_DIR": spool, "ABE_SPOOL_VISIBILITY_TIMEOUT": "30s"]
        )
    }

    func testRedisConsumerKilledWhileHandlingLosesNothing() async throws {
        guard ProcessInfo.processInfo.environment["REDIS_URL"] != nil else {
            throw XCTSkip("REDIS_URL is not set; Scripts/test starts a private redis-server and sets it")
        }
        // XAUTOCLAIM's min-idle is the claiming member's visibility timeout, so this process
        // uses the worker's short one to take over the killed worker's deliveries.
        let variables = [
            "QUEUE_BACKEND": "redis",
            "ABE_REDIS_VISIBILITY_TIMEOUT": Self.visibilityTimeoutVariable,
            "ABE_REDIS_BLOCK_TIME": "200ms",
        ]
        // A key of its own: the server may be shared, and is never flushed.
        try await checkKilledConsumerLosesNothing(key: "abe-consumer-kill-\(UUID().uuidString)", workerVariables: variables, testVariables: variables)
    }

    // MARK: The scenario

    /// Publishes the messages, starts a worker, kills it once a round of handlers has finished and
    /// the next one runs, consumes the rest here with a `MessageConsumer`, and checks the outcome.
    private func checkKilledConsumerLosesNothing(key keyName: String, workerVariables: [String: String], testVariables: [String: String]) async throws {
        let environment = ProcessInfo.processInfo.environment.merging(testVariables) { _, added in added }
        let backend = try loadBackend(providers: [RedisBackend.provider, FileSpoolBackend.provider], environment: environment)
        let provider = type(of: backend).providerName
        let key = try MessageQueueKey(keyName)
        let group = try ConsumerGroup("kill-test")
        let everything = Set(0..<Self.messageCount)
        try await backend.publish((0..<Self.messageCount).map { (key: key, payload: ["n": .int(Int64($0))]) })

        let worker = try workers.start(
            Self.workerExecutable,
            arguments: [keyName, group.name, "--concurrency", "\(Self.workerConcurrency)", "--hold-ms", "\(Self.holdMilliseconds)"],
            environment: workerVariables
        )
        let midRound = await worker.waitUntil(timeout: Self.deadline) { lines in
            let log = WorkerLines(lines)
            return log.handled.count >= Self.workerConcurrency && !log.running.isEmpty
        }
        worker.kill(SIGKILL)
        let killedAt = ContinuousClock.now
        XCTAssertTrue(midRound, "the worker never had a finished round and a running handler at once: \(worker.summary)")
        let end = await worker.waitForExit(timeout: Self.deadline)
        XCTAssertEqual(end, .signalled(SIGKILL), worker.summary)
        let killed = WorkerLines(worker.lines)
        XCTAssertFalse(killed.running.isEmpty, "no handler was running when the kill landed: \(worker.summary)")
        XCTAssertEqual(killed.bad, [], "the worker got messages without a number")

        let processed = Processed()
        let consumer = try MessageConsumer(backend: backend, group: group, keys: [key], concurrency: Self.workerConcurrency, shutdownTimeout: .seconds(5)) { message in
            processed.record(message)
        }
        let running = Task { try await consumer.run() }
        let mustProcess = everything.subtracting(killed.handled)
        let complete = await eventually(within: Self.deadline) { processed.numbers.isSuperset(of: mustProcess) }
        // Not asserted on: time for a message whose handler returned in the killed worker but
        // whose acknowledgement was lost to come back with the rest, so that it is reported.
        try? await Task.sleep(until: killedAt + Self.visibilityTimeout + .seconds(1), clock: .continuous)
        consumer.shutdown()
        let stopped = await completes(within: Self.deadline) { _ = await running.result }
        XCTAssertTrue(stopped, "the consumer did not stop within \(Self.deadline) of shutdown()")
        if stopped, case .failure(let error) = await running.result {
            XCTFail("the consumer failed: \(error)")
        }
        let closed = await completes(within: Self.deadline) { await backend.close() }
        XCTAssertTrue(closed, "the backend did not close within \(Self.deadline)")

        let deliveries = processed.deliveries
        let numbers = Set(deliveries.map(\.n))
        XCTAssertTrue(complete, "not everything unfinished was processed within \(Self.deadline); missing: \(describeRanges(mustProcess.subtracting(numbers)))")
        XCTAssertEqual(numbers.union(killed.handled), everything, "lost: \(describeRanges(everything.subtracting(numbers.union(killed.handled))))")
        XCTAssertEqual(processed.bad, [], "the second consumer got messages without a number")
        let twice = duplicates(deliveries.map(\.n))
        XCTAssertTrue(twice.isEmpty, "the second consumer processed \(describeRanges(twice)) more than once, although nothing killed it")
        // Every message the killed worker had started was delivered to it: here it is a redelivery.
        let firstDeliveriesOfStarted = deliveries.filter { killed.started.contains($0.n) && $0.deliveryCount < 2 }
        XCTAssertEqual(firstDeliveriesOfStarted.map(\.n), [], "messages the killed worker had started came back with deliveryCount 1")
        XCTAssertTrue(killed.running.isSubset(of: numbers), "in-flight messages of the killed worker not processed: \(describeRanges(killed.running.subtracting(numbers)))")

        let againAfterHandled = numbers.intersection(killed.handled)
        let workerRedeliveries = killed.starts.filter { $0.deliveryCount > 1 }.map(\.n)
        print(
            "ConsumerKillTests[\(provider)]: killed worker started \(describeRanges(killed.started)), handled \(describeRanges(killed.handled)), "
                + "running at the kill \(describeRanges(killed.running)); second consumer processed \(deliveries.count) "
                + "(by deliveryCount: \(Dictionary(grouping: deliveries, by: \.deliveryCount).sorted { $0.key < $1.key }.map { "\($0.key): \($0.value.count)" }.joined(separator: ", "))); "
                + "handled by the killed worker and processed again (kill before the acknowledgement): \(describeRanges(againAfterHandled)); "
                + "redelivered to the worker itself before the kill: \(describeRanges(workerRedeliveries))"
        )
    }

    // MARK: Helpers

    /// What the in-process consumer's handler received.
    private final class Processed: Sendable {
        private struct State {
            var deliveries: [(n: Int, deliveryCount: Int)] = []
            var bad: [String] = []
        }

        private let state = Mutex(State())

        func record(_ message: MessageQueueMessage) {
            state.withLock { state in
                if let n = message.payload["n"]?.intValue {
                    state.deliveries.append((Int(n), message.deliveryCount))
                } else {
                    state.bad.append(message.id)
                }
            }
        }

        var deliveries: [(n: Int, deliveryCount: Int)] { state.withLock { $0.deliveries } }
        var numbers: Set<Int> { Set(deliveries.map(\.n)) }
        var bad: [String] { state.withLock { $0.bad } }
    }

    private final class Flag: Sendable {
        private let value = Atomic(false)

        func set() { value.store(true, ordering: .releasing) }
        var isSet: Bool { value.load(ordering: .acquiring) }
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    private func eventually(within timeout: Duration, _ condition: () -> Bool) async -> Bool {
        let end = ContinuousClock.now + timeout
        while ContinuousClock.now < end {
            if condition() { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return condition()
    }

    /// Runs `operation` in a task of its own and waits up to `timeout` for it to finish, so that
    /// an operation that hangs fails the test instead of hanging it.
    private func completes(within timeout: Duration, _ operation: @escaping @Sendable () async -> Void) async -> Bool {
        let done = Flag()
        Task {
            await operation()
            done.set()
        }
        return await eventually(within: timeout) { done.isSet }
    }

    private func duplicates(_ numbers: [Int]) -> Set<Int> {
        var seen = Set<Int>()
        var twice = Set<Int>()
        for n in numbers where !seen.insert(n).inserted { twice.insert(n) }
        return twice
    }
}
