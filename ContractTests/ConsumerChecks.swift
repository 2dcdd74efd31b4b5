import AbstractBackend
import Synchronization
import XCTest

// MessageConsumer over the provider: the runner's promises (retries, order, shutdown, one run,
// groups, concurrency) hold whichever provider is underneath.
extension MessageQueueContractTests {
    /// A handler that throws does not stop the consumer: every failed message is retried and
    /// handled, and messages after it are handled too.
    public func checkConsumerSurvivesHandlerErrors() async throws {
        try skipIfUnsupported(.consumerSurvivesHandlerErrors)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30), maxDeliveries: 5))
        let key = try key("flaky")
        try await publishNumbered(10, to: key, on: backend)

        // Odd numbers fail on their first delivery.
        let run = try startConsumer(backend, group: try group("flaky-handlers"), keys: [key]) { message in
            let seq = sequenceNumber(message) ?? 0
            if seq % 2 == 1 && message.deliveryCount == 1 { throw HandlerFailure("odd \(seq) fails once") }
        }
        try await expectHandled(run, Set((0..<10).map { "\(key.rawValue)#\($0)" }), label: "the consumer with a failing handler")
        let retried = Set(run.calls.filter { $0.message.deliveryCount == 2 }.compactMap { sequenceNumber($0.message) })
        XCTAssertEqual(retried, [1, 3, 5, 7, 9], "each failed message is delivered again once")
        XCTAssertNil(run.ending, "run() ended although only handlers failed: \(String(describing: run.ending))")

        try await publishNumbered(1, to: key, on: backend, from: 10)
        try await expectHandled(run, ["\(key.rawValue)#10"], label: "the consumer after the failures")
        try await stop(run)
    }

    /// With `concurrency: 1` one key's messages are handled one at a time, in publish order.
    public func checkConsumerKeepsOrderWithConcurrencyOne() async throws {
        try skipIfUnsupported(.consumerKeepsOrderWithConcurrencyOne)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30)))
        let key = try key("ordered")
        try await publishNumbered(50, to: key, on: backend)

        let run = try startConsumer(backend, group: try group("in-order"), keys: [key], concurrency: 1) { _ in
            try await Task.sleep(for: .milliseconds(1))
        }
        try await expectHandled(run, Set((0..<50).map { "\(key.rawValue)#\($0)" }), label: "the consumer")
        XCTAssertEqual(run.calls.compactMap { sequenceNumber($0.message) }, Array(0..<50), "handled out of publish order")
        XCTAssertEqual(run.mostRunning, 1, "more than one handler ran at once with concurrency 1")
        try await stop(run)
    }

    /// Shutdown stops pulling, lets running handlers finish (they are acknowledged), cancels one
    /// that outlives `shutdownTimeout` (its message stays pending), and another member of the
    /// group then receives everything that was not acknowledged — and nothing that was.
    public func checkConsumerGracefulShutdown() async throws {
        try skipIfUnsupported(.consumerGracefulShutdown)
        let options = ContractOptions(namespace: namespace, visibilityTimeout: .milliseconds(1500), maxDeliveries: 5)
        let backend = try await freshBackend(options)
        let key = try key("shutdown")
        let group = try group("stoppable")
        try await publishNumbered(8, to: key, on: backend)

        // 0 runs until cancelled; 1 and 2 wait for the gate, which opens after shutdown began.
        let gate = Gate()
        let run = try startConsumer(backend, group: group, keys: [key], concurrency: 3, shutdownTimeout: .milliseconds(800)) { message in
            if sequenceNumber(message) == 0 {
                try await Task.sleep(for: .seconds(3600))
            } else {
                await gate.wait()
            }
        }
        guard try await run.wait(timeout: .seconds(10), until: { $0.count == 3 }) else {
            XCTFail("the consumer started \(run.calls.count) of 3 handlers within 10 s")
            throw ContractCheckStopped(reason: "handlers did not start")
        }
        run.consumer.shutdown()
        run.consumer.shutdown()
        try await Task.sleep(for: .milliseconds(100))
        gate.open()
        guard try await run.waitForEnd(timeout: .seconds(10)) else {
            XCTFail("run() did not return within 10 s of shutdown() with an 800 ms shutdown timeout")
            throw ContractCheckStopped(reason: "shutdown hung")
        }
        if case .failure(let error)? = run.ending { XCTFail("run() threw \(describe(error)) after shutdown()") }
        let handled = run.calls.compactMap { sequenceNumber($0.message) }
        XCTAssertEqual(Set(handled), [0, 1, 2], "after shutdown() the consumer must not start handlers: \(handled)")
        XCTAssertEqual(run.calls.filter(\.finished).count, 3, "every handler call returned or threw before run() returned")

        // 1 and 2 finished during shutdown and were acknowledged; 0 was cancelled and comes back.
        let successor = listen(backend, keys: [key], group: group, ack: true, label: "the next member of the group")
        let expected = Set([0, 3, 4, 5, 6, 7].map { "\(key.rawValue)#\($0)" })
        try await expectAll(successor, expected, within: options.visibilityTimeout + .seconds(10), tag: keyAndSequence)
        try await expectNoMore(successor, than: expected.count, during: options.visibilityTimeout + .milliseconds(300))
        let redelivered = successor.messages.first { sequenceNumber($0) == 0 }
        XCTAssertGreaterThanOrEqual(redelivered?.deliveryCount ?? 0, 2, "the cancelled handler's message comes back as a redelivery")
    }

    /// A second `run()` — while the first runs, or after it returned — throws `invalid-state`
    /// and starts nothing; `run()` after `shutdown()` returns at once without handling anything.
    public func checkConsumerSecondRunRefused() async throws {
        try skipIfUnsupported(.consumerSecondRunRefused)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30)))
        let key = try key("once")
        try await publishNumbered(1, to: key, on: backend)

        let run = try startConsumer(backend, group: try group("single-runner"), keys: [key])
        try await expectHandled(run, ["\(key.rawValue)#0"], label: "the consumer")
        let consumer = run.consumer
        try await expectError(.invalidState, from: "a second concurrent run()") { try await consumer.run() }
        try await stop(run)
        try await expectError(.invalidState, from: "run() after run() returned") { try await consumer.run() }
        XCTAssertEqual(run.calls.count, 1, "the refused runs must not handle messages")

        try await publishNumbered(1, to: key, on: backend, from: 1)
        let early = try startConsumer(backend, group: try group("never-started"), keys: [key], startRunning: false)
        early.consumer.shutdown()
        try await bounded("run() after shutdown()", timeout: .seconds(5)) { try await early.consumer.run() }
        XCTAssertTrue(early.calls.isEmpty, "run() after shutdown() handled \(early.calls.count) message(s)")
    }

    /// Consumers in two groups each handle every message, and each message says which group it
    /// was delivered in; what a group acknowledged is not delivered to it again.
    public func checkConsumerGroupReachesProvider() async throws {
        try skipIfUnsupported(.consumerGroupReachesProvider)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .milliseconds(500)))
        let key = try key("fanned")
        let billing = try group("billing")
        let shipping = try group("shipping")
        // Both groups must exist before anything is acknowledged: retention may drop what every
        // existing group acknowledged, and a group created later starts after it. A probe that
        // each group receives, and nobody acknowledges, proves both exist.
        try await publishNumbered(1, to: key, on: backend, from: -1)
        let probes = [billing, shipping].map { listen(backend, keys: [key], group: $0, ack: false, limit: 1) }
        for probe in probes { try await expect(probe, count: 1) }
        for probe in probes { probe.cancel() }
        try await publishNumbered(5, to: key, on: backend)

        let first = try startConsumer(backend, group: billing, keys: [key])
        let second = try startConsumer(backend, group: shipping, keys: [key])
        // The probe comes back to each group after the visibility timeout.
        let all = Set((-1..<5).map { "\(key.rawValue)#\($0)" })
        try await expectHandled(first, all, label: "the billing consumer")
        try await expectHandled(second, all, label: "the shipping consumer")
        XCTAssertEqual(Set(first.calls.map(\.message.group)), [billing])
        XCTAssertEqual(Set(second.calls.map(\.message.group)), [shipping])
        try await stop(first)
        try await stop(second)

        // Acknowledged by the consumer, so past the visibility timeout nothing is left for billing.
        let latecomer = listen(backend, keys: [key], group: billing, ack: true, label: "a later billing member")
        try await expectNoMore(latecomer, than: 0, during: .seconds(1))
    }

    /// A message whose handler always fails is retried with the policy's delays, each failure
    /// recorded, and after `maxDeliveries` it is in the dead-letter key with the last error; a
    /// thrown ``RetryAfter`` sets the delay itself. The consumer keeps going afterwards.
    public func checkConsumerRetriesEndInDeadLetter() async throws {
        try skipIfUnsupported(.consumerRetriesEndInDeadLetter)
        let options = ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30), maxDeliveries: 3)
        let backend = try await freshBackend(options)
        let key = try key("doomed")
        let group = try group("retrying-handlers")
        try await publish([(key, ["doomed": true]), (key, ["later": true])], to: backend)

        let policy = RetryPolicy(initialDelay: .milliseconds(100), multiplier: 2, maxDelay: .seconds(1), jitter: 0)
        let run = try startConsumer(backend, group: group, keys: [key], concurrency: 2, retryPolicy: policy) { message in
            if message.payload["doomed"] != nil { throw HandlerFailure("boom-\(message.deliveryCount)") }
            if message.deliveryCount == 1 { throw RetryAfter(.milliseconds(400), reason: "not yet") }
        }
        let deadLetters = listen(backend, keys: [key.deadLetterKey], group: try self.group("inspector"), ack: true)
        try await expect(deadLetters, count: 1, within: .seconds(10))
        guard try await run.wait(timeout: .seconds(5), until: { calls in calls.contains { $0.message.payload["later"] != nil && $0.message.deliveryCount == 2 } }) else {
            XCTFail("the message that threw RetryAfter was not delivered again within 5 s: \(run.calls.map { describe($0.message) })")
            throw ContractCheckStopped(reason: "RetryAfter ignored")
        }

        let doomed = run.calls.filter { $0.message.payload["doomed"] != nil }
        XCTAssertEqual(doomed.map(\.message.deliveryCount), [1, 2, 3], "deliveries of the always-failing message")
        if doomed.count == 3 {
            for (index, wanted) in [Duration.milliseconds(100), .milliseconds(200)].enumerated() {
                let gap = doomed[index + 1].startedAt - doomed[index].startedAt
                XCTAssertGreaterThanOrEqual(gap, wanted * 9 / 10, "retry \(index + 1) came \(seconds(gap)) after the failure; the policy says \(seconds(wanted))")
            }
        }
        let later = run.calls.filter { $0.message.payload["later"] != nil }
        if later.count >= 2 {
            let gap = later[1].startedAt - later[0].startedAt
            XCTAssertGreaterThanOrEqual(gap, .milliseconds(360), "RetryAfter(400 ms) redelivered after only \(seconds(gap))")
        }
        let letter = try DeadLetter(from: deadLetters.messages[0].payload)
        XCTAssertEqual(letter.reason, DeadLetter.Reason.maxDeliveries)
        XCTAssertEqual(letter.deliveryCount, options.maxDeliveries)
        XCTAssertEqual(letter.lastError, "boom-3", "the dead letter records the handler's last error")
        XCTAssertEqual(letter.payload, ["doomed": true])

        try await publishNumbered(1, to: key, on: backend)
        try await expectHandled(run, ["\(key.rawValue)#0"], label: "the consumer after a dead letter")
        try await stop(run)
    }

    /// Never more than `concurrency` handlers run at once, and with enough work the consumer
    /// does run that many.
    public func checkConsumerConcurrencyLimit() async throws {
        try skipIfUnsupported(.consumerConcurrencyLimit)
        let backend = try await freshBackend(ContractOptions(namespace: namespace, visibilityTimeout: .seconds(30)))
        let key = try key("parallel")
        try await publishNumbered(30, to: key, on: backend)

        let run = try startConsumer(backend, group: try group("three-at-once"), keys: [key], concurrency: 3) { _ in
            try await Task.sleep(for: .milliseconds(30))
        }
        try await expectHandled(run, Set((0..<30).map { "\(key.rawValue)#\($0)" }), label: "the consumer")
        XCTAssertEqual(run.mostRunning, 3, "with concurrency 3 and 30 slow messages, exactly 3 handlers should have run at once at the peak")
        try await stop(run)
    }

    // MARK: Helpers

    /// Starts a ``MessageConsumer`` over `backend` (unless `startRunning` is false) and cancels it
    /// when the test ends.
    func startConsumer(
        _ backend: any MessageQueueBackend,
        group: ConsumerGroup?,
        keys: [MessageQueueKey]?,
        concurrency: Int = 1,
        retryPolicy: RetryPolicy = .immediate,
        shutdownTimeout: Duration = .seconds(5),
        startRunning: Bool = true,
        behaviour: @escaping ConsumerRun.Behaviour = { _ in }
    ) throws -> ConsumerRun {
        let run = try ConsumerRun.make(
            backend: backend, group: group, keys: keys, concurrency: concurrency,
            retryPolicy: retryPolicy, shutdownTimeout: shutdownTimeout, behaviour: behaviour
        )
        if startRunning { run.start() }
        addTeardownBlock { run.cancel() }
        return run
    }

    /// Waits until the handler of `run` has returned successfully for every numbered message in
    /// `expected` (`"<key>#<seq>"`), failing with what is missing after `timeout`.
    func expectHandled(
        _ run: ConsumerRun,
        _ expected: Set<String>,
        label: String,
        timeout: Duration = .seconds(10),
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let handled: @Sendable ([ConsumerRun.Call]) -> Set<String> = { calls in
            Set(calls.filter { $0.finished && !$0.failed }.compactMap { keyAndSequence($0.message) })
        }
        if try await run.wait(timeout: timeout, until: { expected.isSubset(of: handled($0)) }) { return }
        let missing = expected.subtracting(handled(run.calls)).sorted()
        XCTFail("\(label) did not handle \(missing.count) of \(expected.count) messages within \(seconds(timeout)): \(missing.prefix(10).joined(separator: ", "))", file: file, line: line)
        throw ContractCheckStopped(reason: "messages not handled")
    }

    /// Shuts `run` down and fails unless `run()` returns without an error within 10 s.
    func stop(_ run: ConsumerRun, file: StaticString = #filePath, line: UInt = #line) async throws {
        run.consumer.shutdown()
        guard try await run.waitForEnd(timeout: .seconds(10)) else {
            XCTFail("run() did not return within 10 s of shutdown()", file: file, line: line)
            throw ContractCheckStopped(reason: "shutdown hung")
        }
        if case .failure(let error)? = run.ending {
            XCTFail("run() threw \(describe(error))", file: file, line: line)
        }
    }
}

/// The error the checks' handlers throw; its description is what a dead letter records.
struct HandlerFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A one-way door that handlers wait at until the check opens it.
final class Gate: Sendable {
    private let state = Mutex<(open: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func wait() async {
        await withCheckedContinuation { continuation in
            let open = state.withLock { state -> Bool in
                if !state.open { state.waiters.append(continuation) }
                return state.open
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}
