import AbstractBackend
import XCTest

/// The options a contract check asks ``MessageQueueContractTests/makeBackend(_:)`` to honour.
public struct ContractOptions: Sendable {
    /// A prefix unique to the running test; every key the check uses starts with it, so tests
    /// sharing a server or a directory never see each other's messages.
    public var namespace: String
    /// How long a delivered message may stay unacknowledged before it is delivered again.
    public var visibilityTimeout: Duration
    /// Deliveries after which a message moves to its key's dead-letter key.
    public var maxDeliveries: Int

    /// Creates options. The defaults keep redelivery checks fast.
    public init(namespace: String, visibilityTimeout: Duration = .milliseconds(200), maxDeliveries: Int = 3) {
        self.namespace = namespace
        self.visibilityTimeout = visibilityTimeout
        self.maxDeliveries = maxDeliveries
    }

    /// A fresh namespace: `abe-ct-` and 12 random hexadecimal digits.
    public static func uniqueNamespace() -> String {
        let digits = Array("0123456789abcdef")
        return "abe-ct-" + String((0..<12).map { _ in digits.randomElement()! })
    }
}

/// The contract every Abstract Backend provider must satisfy, as a reusable XCTest base class.
///
/// A provider's runner subclasses it, overrides ``makeBackend(_:)`` (and ``provider`` and
/// ``environment(for:)`` for the `fromEnvironment` case), and declares one test method per
/// ``ContractCase`` that calls the matching check:
///
/// ```swift
/// final class RedisContractTests: MessageQueueContractTests {
///     override func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend { … }
///     func testFifoPerKey() async throws { try await checkFifoPerKey() }
///     // … one per case; Scripts/check-contract-runners fails when one is missing.
/// }
/// ```
///
/// XCTest on Linux does not discover inherited test methods, which is why the runner declares
/// them. Every wait in a check is bounded: a provider that loses a message or never wakes a
/// consumer fails the check with a message saying what was missing; it never hangs the run.
open class MessageQueueContractTests: XCTestCase {
    /// The key prefix of the running test. XCTest makes one instance per test method, so each
    /// test gets its own.
    public let namespace = ContractOptions.uniqueNamespace()

    /// The default options for the running test: its ``namespace``, a 200 ms visibility timeout
    /// and 3 deliveries.
    public var options: ContractOptions { ContractOptions(namespace: namespace) }

    /// Returns a fresh backend configured by `options`: its visibility timeout is
    /// `options.visibilityTimeout`, its maximum deliveries `options.maxDeliveries`, and it sees
    /// only keys that start with `options.namespace` when consuming every key.
    ///
    /// Runners must override it; the checks close every backend they make.
    open func makeBackend(_ options: ContractOptions) async throws -> any MessageQueueBackend {
        XCTFail("\(type(of: self)) must override makeBackend(_:) to return a fresh backend for the contract suite")
        throw ContractCheckStopped(reason: "makeBackend(_:) is not overridden")
    }

    /// The provider's descriptor, used by the `fromEnvironment` case. `nil` fails that case
    /// unless it is listed in ``unsupportedCases``.
    open var provider: MessageQueueProvider? { nil }

    /// The environment that configures the provider like ``makeBackend(_:)`` does for `options`,
    /// used by the `fromEnvironment` case. Empty by default.
    open func environment(for options: ContractOptions) -> [String: String] { [:] }

    /// Cases the provider cannot support, with the reason; each is skipped with that reason.
    open var unsupportedCases: [ContractCase: String] { [:] }

    /// A key in the running test's namespace: `<namespace>:<name>`.
    public func key(_ name: String) throws -> MessageQueueKey {
        try MessageQueueKey("\(namespace):\(name)")
    }

    /// A consumer group called `name`. Groups belong to keys, so the namespaced keys isolate them.
    public func group(_ name: String) throws -> ConsumerGroup {
        try ConsumerGroup(name)
    }

    /// The name shown in skip messages: the provider's name, or the runner's class name.
    var providerLabel: String { provider?.name ?? String(describing: type(of: self)) }

    /// Throws `XCTSkip` when the runner declared `contractCase` unsupported.
    func skipIfUnsupported(_ contractCase: ContractCase) throws {
        if let reason = unsupportedCases[contractCase] {
            throw XCTSkip("\(providerLabel) does not support \(contractCase.rawValue): \(reason)")
        }
    }

    /// Makes a backend with ``makeBackend(_:)`` and closes it when the test ends, pass or fail.
    func freshBackend(_ options: ContractOptions? = nil) async throws -> any MessageQueueBackend {
        let backend = try await makeBackend(options ?? self.options)
        closeAtTeardown(backend)
        return backend
    }

    /// Closes `backend` after the test, failing the test instead of hanging when `close()` does.
    func closeAtTeardown(_ backend: any MessageQueueBackend) {
        addTeardownBlock {
            let closed: Void? = try await Bounded.run(timeout: .seconds(5)) { await backend.close() }
            if closed == nil { XCTFail("close() did not return within 5 s") }
        }
    }
}

/// Thrown after a check reported a failure with `XCTFail`, to stop it without cascading failures.
struct ContractCheckStopped: Error, CustomStringConvertible {
    let reason: String
    var description: String { "contract check stopped: \(reason) (see the failure above)" }
}
