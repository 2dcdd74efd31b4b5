import AbstractBackend
import XCTest

// Lifecycle: a backend built from the environment works; a closed one refuses work clearly.
extension MessageQueueContractTests {
    /// The provider's descriptor builds a working backend from ``environment(for:)``, both
    /// directly and through `loadBackend` with `QUEUE_BACKEND` naming the provider.
    public func checkFromEnvironment() async throws {
        try skipIfUnsupported(.fromEnvironment)
        guard let provider else {
            return XCTFail("\(type(of: self)) must override `provider` to return its MessageQueueProvider, or list .fromEnvironment in unsupportedCases with a reason")
        }
        let environment = self.environment(for: options)
        let direct = try provider.makeBackend(environment)
        closeAtTeardown(direct)
        let loaded = try loadBackend(
            providers: [provider],
            environment: environment.merging([queueBackendVariable: provider.name]) { _, selected in selected }
        )
        closeAtTeardown(loaded)

        for (index, (route, backend)) in [("provider.makeBackend", direct), ("loadBackend", loaded)].enumerated() {
            XCTAssertEqual(type(of: backend).providerName, provider.name, "\(route) made a \(type(of: backend))")
            let key = try key("from-environment-\(index)")
            let payload: MessageQueuePayload = ["route": .string(route), "seq": 0]
            try await publish([(key, payload)], to: backend)
            let received = try await receive(count: 1, from: backend, keys: [key], group: group("environment"))
            XCTAssertEqual(received[0].payload, payload, "through the backend made by \(route)")
            XCTAssertEqual(received[0].key, key)
            XCTAssertEqual(received[0].deliveryCount, 1)
        }
    }

    /// `close()` ends waiting consumers with ``MessageQueueError/Code/closed`` within 2 s; later
    /// publishes, acknowledgements and new consumers fail with `closed`; a second `close()` is harmless.
    public func checkCloseReleases() async throws {
        try skipIfUnsupported(.closeReleases)
        let backend = try await freshBackend()
        let key = try key("closing")
        let group = try group("closing")
        try await publishNumbered(1, to: key, on: backend)
        let held = try await receive(count: 1, from: backend, keys: [key], group: group, ack: false)[0]

        let waiting = [
            listen(backend, keys: [try self.key("empty")], group: group, ack: false, label: "a consumer of an empty key"),
            listen(backend, group: try self.group("everything"), ack: true, label: "a consumer of every key"),
        ]
        // Let both reach the point where they wait for new messages.
        try await expect(waiting[1], count: 1)
        try await Task.sleep(for: .milliseconds(200))

        let closedAt = ContinuousClock.now
        try await bounded("close()", timeout: .seconds(5)) { await backend.close() }
        for listener in waiting {
            let ended = try await Bounded.poll(timeout: closedAt + .seconds(2) - ContinuousClock.now) { listener.ending != nil }
            switch listener.ending {
            case .failed(let error as MessageQueueError)? where error.code == .closed:
                XCTAssertTrue(ended)
            case .failed(let error)?:
                XCTFail("\(listener.label) ended with \(describe(error)) when the backend closed; it must throw MessageQueueError closed")
            case .finished?, .limitReached?:
                XCTFail("\(listener.label) ended without an error when the backend closed; it must throw MessageQueueError closed")
            case nil:
                XCTFail("\(listener.label) was still waiting 2 s after close()")
            }
        }

        try await expectError(.closed, from: "publish after close()") {
            try await backend.publish(["seq": 1], to: key)
        }
        try await expectError(.closed, from: "publish(_ batch:) after close()") {
            try await backend.publish([(key: key, payload: ["seq": 2] as MessageQueuePayload)])
        }
        try await expectError(.closed, from: "ack() after close()") { try await held.ack() }
        for (label, messages) in [
            ("consume(keys:group:) made after close()", consumer(backend, keys: [key], group: group)),
            ("consume(group:) made after close()", consumer(backend, keys: nil, group: group)),
        ] {
            try await expectError(.closed, from: "iterating \(label)") {
                for try await message in messages {
                    throw ContractCheckStopped(reason: "it delivered \(message.key) #\(message.id)")
                }
            }
        }
        try await bounded("a second close()", timeout: .seconds(5)) { await backend.close() }
    }
}
