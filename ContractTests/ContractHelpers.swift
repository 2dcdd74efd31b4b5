import AbstractBackend
import XCTest

// Helpers shared by the checks. Each wait is bounded and, when it runs out, reports what was
// missing with `XCTFail` and stops the check by throwing `ContractCheckStopped`.
extension MessageQueueContractTests {
    /// Receives `count` messages from `messages` as one member, acknowledging each when `ack` is
    /// true, and returns them in order of receipt.
    ///
    /// The sequence is iterated in its own task, which stops after `count` messages, so it never
    /// takes more than asked. When fewer arrive within `timeout`, the test fails with
    /// "received only X of Y messages within T s from <label>" and the check stops.
    public func receive(
        count: Int,
        from messages: some AsyncSequence<MessageQueueMessage, any Error> & Sendable,
        timeout: Duration = .seconds(10),
        ack: Bool = true,
        label: String = "the consumer",
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> [MessageQueueMessage] {
        let listener = MessageListener(messages, label: label, ack: ack, limit: count)
        addTeardownBlock { listener.cancel() }
        _ = try await listener.waitForEnd(timeout: timeout)
        // Read before cancelling, so a timeout is not reported as the CancellationError it causes.
        let ending = listener.ending
        if ending == nil { listener.cancel() }
        let received = listener.count
        switch ending {
        case .limitReached?:
            return listener.messages
        case .finished?:
            XCTFail("\(label) ended after \(received) of \(count) messages", file: file, line: line)
        case .failed(let error)?:
            XCTFail("\(label) threw \(describe(error)) after \(received) of \(count) messages", file: file, line: line)
        case nil:
            XCTFail("received only \(received) of \(count) messages within \(seconds(timeout)) from \(label)", file: file, line: line)
        }
        throw ContractCheckStopped(reason: "messages missing from \(label)")
    }

    /// Receives `count` messages from `consume(keys:group:)`, or `consume(group:)` when `keys` is `nil`.
    func receive(
        count: Int,
        from backend: any MessageQueueBackend,
        keys: [MessageQueueKey]? = nil,
        group: ConsumerGroup?,
        timeout: Duration = .seconds(10),
        ack: Bool = true,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws -> [MessageQueueMessage] {
        try await receive(
            count: count, from: consumer(backend, keys: keys, group: group), timeout: timeout, ack: ack,
            label: consumerLabel(keys: keys, group: group), file: file, line: line
        )
    }

    /// Starts one member on `consume(keys:group:)` (or every key when `keys` is `nil`) that runs
    /// until the check stops it or the test ends.
    func listen(
        _ backend: any MessageQueueBackend,
        keys: [MessageQueueKey]? = nil,
        group: ConsumerGroup?,
        ack: Bool,
        processing: Duration? = nil,
        limit: Int? = nil,
        label: String? = nil
    ) -> MessageListener {
        let listener = MessageListener(
            consumer(backend, keys: keys, group: group), label: label ?? consumerLabel(keys: keys, group: group),
            ack: ack, processing: processing, limit: limit
        )
        addTeardownBlock { listener.cancel() }
        return listener
    }

    /// Waits until `listener` has at least `count` messages, failing and stopping the check
    /// when they do not arrive within `timeout` or the iteration ends first.
    func expect(
        _ listener: MessageListener,
        count: Int,
        within timeout: Duration = .seconds(10),
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        guard try await !listener.wait(forCount: count, timeout: timeout) else { return }
        failMissing(listener, wanted: count == 1 ? "a message" : "\(count) messages", within: timeout, file: file, line: line)
        throw ContractCheckStopped(reason: "messages missing from \(listener.label)")
    }

    /// Waits until `listener` received every message whose `tag` is in `expected`, failing with
    /// the missing tags and stopping the check when they do not all arrive within `timeout`.
    func expectAll(
        _ listener: MessageListener,
        _ expected: Set<String>,
        within timeout: Duration = .seconds(10),
        file: StaticString = #filePath,
        line: UInt = #line,
        tag: @escaping (MessageQueueMessage) -> String?
    ) async throws {
        let complete = try await listener.wait(timeout: timeout) { deliveries in
            expected.isSubset(of: deliveries.compactMap { tag($0.message) })
        }
        guard !complete else { return }
        let seen = Set(listener.messages.compactMap(tag))
        let missing = expected.subtracting(seen).sorted()
        var problem = "received only \(expected.count - missing.count) of \(expected.count) expected messages within \(seconds(timeout)) from \(listener.label); missing \(missing.prefix(10).joined(separator: ", "))\(missing.count > 10 ? ", …" : "")"
        let unexpected = listener.messages.filter { tag($0).map { !expected.contains($0) } ?? true }
        if !unexpected.isEmpty {
            problem += "; \(unexpected.count) received message(s) match none expected, e.g. \(unexpected.prefix(3).map(describe).joined(separator: "; "))"
        }
        if case .failed(let error)? = listener.ending { problem += "; the consumer threw \(describe(error))" }
        XCTFail(problem, file: file, line: line)
        throw ContractCheckStopped(reason: "messages missing from \(listener.label)")
    }

    private func failMissing(_ listener: MessageListener, wanted: String, within timeout: Duration, file: StaticString, line: UInt) {
        let received = listener.count
        switch listener.ending {
        case .failed(let error)?:
            XCTFail("\(listener.label) threw \(describe(error)) after \(received) messages, before \(wanted) arrived", file: file, line: line)
        case .finished?:
            XCTFail("\(listener.label) ended after \(received) messages, before \(wanted) arrived", file: file, line: line)
        default:
            XCTFail("received only \(received) messages within \(seconds(timeout)) from \(listener.label), waiting for \(wanted)", file: file, line: line)
        }
    }

    /// Runs `body` with a time bound, failing and stopping the check when it does not finish.
    @discardableResult
    func bounded<T: Sendable>(
        _ what: String,
        timeout: Duration = .seconds(10),
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: @escaping @Sendable () async throws -> T
    ) async throws -> T {
        guard let result = try await Bounded.run(timeout: timeout, body) else {
            XCTFail("\(what) did not finish within \(seconds(timeout))", file: file, line: line)
            throw ContractCheckStopped(reason: "\(what) timed out")
        }
        return result
    }

    /// Runs `body` with a time bound and fails unless it throws a ``MessageQueueError`` with `code`.
    func expectError(
        _ code: MessageQueueError.Code,
        from what: String,
        timeout: Duration = .seconds(5),
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: @escaping @Sendable () async throws -> Void
    ) async throws {
        let thrown: (any Error)? = try await bounded(what, timeout: timeout, file: file, line: line) {
            do {
                try await body()
                return nil
            } catch {
                return error
            }
        }
        guard let thrown else {
            return XCTFail("\(what) succeeded; expected MessageQueueError \(code)", file: file, line: line)
        }
        guard let error = thrown as? MessageQueueError else {
            return XCTFail("\(what) threw \(describe(thrown)); expected MessageQueueError \(code)", file: file, line: line)
        }
        XCTAssertEqual(error.code, code, "\(what) threw \(error)", file: file, line: line)
    }

    /// Publishes `items` one call at a time, in order, with a time bound.
    func publish(
        _ items: [(key: MessageQueueKey, payload: MessageQueuePayload)],
        to backend: any MessageQueueBackend,
        timeout: Duration = .seconds(10),
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let done = ProgressCounter()
        let result: Void? = try await Bounded.run(timeout: timeout) { [items] in
            for item in items {
                try await backend.publish(item.payload, to: item.key)
                done.increment()
            }
        }
        if result == nil {
            XCTFail("publishing \(items.count) messages did not finish within \(seconds(timeout)); \(done.current) returned", file: file, line: line)
            throw ContractCheckStopped(reason: "publish timed out")
        }
    }

    /// Publishes `{"seq": first…}` payloads numbered from `first` to `key`.
    func publishNumbered(
        _ count: Int,
        to key: MessageQueueKey,
        on backend: any MessageQueueBackend,
        from first: Int = 0,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        let items = (first..<first + count).map { (key: key, payload: numbered($0)) }
        try await publish(items, to: backend, file: file, line: line)
    }

    /// Fails when `listener` received more than `expected` messages after listening for `duration` more.
    func expectNoMore(
        _ listener: MessageListener,
        than expected: Int,
        during duration: Duration,
        file: StaticString = #filePath,
        line: UInt = #line
    ) async throws {
        try await Task.sleep(for: duration)
        let extra = listener.messages.dropFirst(expected)
        if !extra.isEmpty {
            XCTFail("\(listener.label) received \(extra.count) unexpected message(s) within \(seconds(duration)) after the expected \(expected): \(extra.prefix(5).map(describe).joined(separator: "; "))", file: file, line: line)
        }
    }

    // MARK: Describing

    func consumer(
        _ backend: any MessageQueueBackend,
        keys: [MessageQueueKey]?,
        group: ConsumerGroup?
    ) -> any AsyncSequence<MessageQueueMessage, any Error> & Sendable {
        if let keys { backend.consume(keys: keys, group: group) } else { backend.consume(group: group) }
    }

    func consumerLabel(keys: [MessageQueueKey]?, group: ConsumerGroup?) -> String {
        let groupText = group.map { "\"\($0.name)\"" } ?? "nil"
        guard let keys else { return "consume(group: \(groupText))" }
        return "consume(keys: [\(keys.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))], group: \(groupText))"
    }

    /// Fails unless `messages` carry exactly the tags in `expected`, naming what is missing or extra.
    func assertTags(
        _ messages: [MessageQueueMessage],
        equal expected: Set<String>,
        file: StaticString = #filePath,
        line: UInt = #line,
        tag: (MessageQueueMessage) -> String?
    ) {
        let received = Set(messages.compactMap(tag))
        let missing = expected.subtracting(received).sorted()
        let extra = messages.filter { tag($0).map { !expected.contains($0) } ?? true }
        if !missing.isEmpty || !extra.isEmpty {
            XCTFail("\(missing.count) expected message(s) missing (e.g. \(missing.prefix(5).joined(separator: ", "))), \(extra.count) unexpected (e.g. \(extra.prefix(3).map(describe).joined(separator: "; ")))", file: file, line: line)
        }
    }

    /// Fails unless the numbered messages of each key arrived in increasing `seq` order.
    func assertOrderedPerKey(_ messages: [MessageQueueMessage], file: StaticString = #filePath, line: UInt = #line) {
        var last: [MessageQueueKey: Int] = [:]
        for (index, message) in messages.enumerated() {
            guard let seq = sequenceNumber(message) else {
                XCTFail("message \(index) has no integer \"seq\": \(describe(message))", file: file, line: line)
                return
            }
            if let previous = last[message.key], seq <= previous {
                XCTFail("\(message.key) delivered seq \(seq) after seq \(previous) (message \(index) received); FIFO per key is broken", file: file, line: line)
                return
            }
            last[message.key] = seq
        }
    }

    /// `{"seq": n}`.
    func numbered(_ n: Int) -> MessageQueuePayload { ["seq": .int(Int64(n))] }

    func describe(_ message: MessageQueueMessage) -> String {
        let payload = message.payload.description
        let shown = payload.count > 120 ? payload.prefix(120) + "…" : payload[...]
        return "\(message.key) #\(message.id) (delivery \(message.deliveryCount)) \(shown)"
    }

    func describe(_ error: any Error) -> String {
        "\(type(of: error)) \"\(error)\""
    }

    func seconds(_ duration: Duration) -> String {
        let components = duration.components
        let value = Double(components.seconds) + Double(components.attoseconds) / 1e18
        let rounded = (value * 1000).rounded() / 1000
        return "\(rounded) s"
    }
}

/// `"<key>#<seq>"`, identifying a numbered message by content rather than provider id.
func keyAndSequence(_ message: MessageQueueMessage) -> String? {
    sequenceNumber(message).map { "\(message.key.rawValue)#\($0)" }
}

/// The `seq` member of a numbered payload.
func sequenceNumber(_ message: MessageQueueMessage) -> Int? {
    message.payload["seq"]?.intValue.map(Int.init)
}
