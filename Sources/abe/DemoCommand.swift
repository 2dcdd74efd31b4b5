import AbstractBackend
import AbstractBackendInMemory
import ArgumentParser
import Synchronization

/// The main job: one producer and a consumer group working through the public API only.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run a producer and a consumer group over the selected provider and print a summary.",
        discussion: """
            The provider comes from the environment, as in an application: QUEUE_BACKEND names one; \
            otherwise REDIS_URL selects Redis and ABE_SPOOL_DIR the file spool; with nothing set it is \
            the in-memory provider. Scripts/demo sets ABE_SPOOL_DIR=./.abe-spool (emptied first) when \
            none of them is set, so it runs on the durable file spool. Each run uses a key of its own \
            (demo.orders.<random>). Every 500th order fails once in its handler and is retried, so the \
            summary shows redelivery at work.
            """
    )

    @OptionGroup var provider: ProviderOptions

    @Option(name: .long, help: "Orders to publish.")
    var messages: Int = 20_000

    @Option(name: .long, help: "Members of the consumer group.")
    var consumers: Int = 2

    @Option(name: .long, help: "The consumer group.")
    var group: String = "demo-workers"

    func validate() throws {
        guard messages > 0 else { throw ValidationError("--messages must be at least 1") }
        guard (1...64).contains(consumers) else { throw ValidationError("--consumers must be 1 to 64") }
    }

    func run() async throws {
        let backend = try await provider.makeBackend()
        let key = try MessageQueueKey("demo.orders.\(UInt32.random(in: 0...UInt32.max))")
        let group = try ConsumerGroup(group)
        let expected = messages
        let progress = DemoProgress()
        let start = ContinuousClock.now

        let reporter = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .milliseconds(250))
                progress.print(expected: expected, elapsed: ContinuousClock.now - start)
            }
        }
        let consumerCounts = try await withThrowingTaskGroup(of: Int.self) { tasks in
            for _ in 0..<consumers {
                tasks.addTask { try await consume(backend, key: key, group: group, progress: progress, expected: expected) }
            }
            tasks.addTask {
                var published = 0
                while published < expected {
                    let count = min(100, expected - published)
                    let batch = (published..<published + count).map { number in
                        (key: key, payload: Self.order(number))
                    }
                    try await backend.publish(batch)
                    published += count
                    progress.published.add(count, ordering: .relaxed)
                }
                return -1
            }
            var counts: [Int] = []
            for try await count in tasks where count >= 0 {
                counts.append(count)
                // The first member to see the last order ends the others.
                tasks.cancelAll()
            }
            return counts
        }
        reporter.cancel()
        let elapsed = ContinuousClock.now - start
        progress.print(expected: expected, elapsed: elapsed, final: true)
        await backend.close()

        let processed = progress.processed.load(ordering: .relaxed)
        let duplicates = progress.duplicates.load(ordering: .relaxed)
        let lost = expected - (processed - duplicates)
        print(
            "demo: provider \(type(of: backend).providerName), \(expected) orders published and processed by \(consumers) consumers \(consumerCounts) in \((elapsed.seconds * 100).rounded() / 100)s, retried \(progress.retried.load(ordering: .relaxed)), lost \(lost), duplicates \(duplicates)"
        )
        if Terminal.isOutputInteractive {
            var table = TextTable(header: nil, rightAligned: [1])
            table.rows = [
                ["provider", type(of: backend).providerName],
                ["orders", "\(expected)"],
            ]
            table.rows += consumerCounts.enumerated().map { ["consumer \($0.offset + 1)", "\($0.element)"] }
            table.rows += [
                ["seconds", "\((elapsed.seconds * 100).rounded() / 100)"],
                ["orders/s", "\(Int(Double(expected) / max(elapsed.seconds, 0.001)))"],
                ["retried", "\(progress.retried.load(ordering: .relaxed))"],
                ["lost", "\(lost)"],
                ["duplicates", "\(duplicates)"],
            ]
            print(table.rendered, terminator: "")
        }
        if lost != 0 { throw ExitCode.failure }
    }

    static func order(_ number: Int) -> MessageQueuePayload {
        ["order": .int(Int64(number)), "customer": .string("customer-\(number % 97)"), "amount": .double(Double(number % 1000) / 10)]
    }

    /// One member of the group: processes orders until all of them have been seen, or until the
    /// group is told to stop. Returns how many orders this member processed.
    private func consume(
        _ backend: any MessageQueueBackend,
        key: MessageQueueKey,
        group: ConsumerGroup,
        progress: DemoProgress,
        expected: Int
    ) async throws -> Int {
        var handled = 0
        do {
            for try await message in backend.consume(keys: [key], group: group) {
                guard case .int(let order)? = message.payload["order"] else {
                    try await message.nack(reason: "not an order")
                    continue
                }
                if order % 500 == 0 && message.deliveryCount == 1 {
                    progress.retried.add(1, ordering: .relaxed)
                    try await message.nack(reason: "simulated failure of order \(order)")
                    continue
                }
                try await message.ack()
                handled += 1
                if progress.markProcessed(Int(order)) >= expected { break }
            }
        } catch is CancellationError {
            // Another member saw the last order.
        }
        return handled
    }
}

/// Counters shared by the demo's tasks.
final class DemoProgress: Sendable {
    let published = Atomic<Int>(0)
    let processed = Atomic<Int>(0)
    let retried = Atomic<Int>(0)
    let duplicates = Atomic<Int>(0)
    private let seen = Mutex<Set<Int>>([])

    /// Records an order; returns how many distinct orders have been processed.
    func markProcessed(_ order: Int) -> Int {
        processed.add(1, ordering: .relaxed)
        let (isNew, distinct) = seen.withLock { seen in (seen.insert(order).inserted, seen.count) }
        if !isNew { duplicates.add(1, ordering: .relaxed) }
        return distinct
    }

    func print(expected: Int, elapsed: Duration, final: Bool = false) {
        let published = published.load(ordering: .relaxed)
        let processed = processed.load(ordering: .relaxed)
        let seconds = max(elapsed.seconds, 0.001)
        let line = "published \(published)/\(expected)  processed \(processed)/\(expected)  \(Int(Double(processed) / seconds)) msg/s"
        if Terminal.isInteractive {
            ProgressBar.draw(ProgressBar.bar(Double(processed) / Double(max(expected, 1))) + "  " + line + (final ? "\n" : ""))
        } else if final || processed < expected {
            Terminal.writeError(line + "\n")
        }
    }
}
