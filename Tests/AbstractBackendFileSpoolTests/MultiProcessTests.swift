import AbstractBackend
import AbstractBackendFileSpool
import Foundation
import TestSupport
import XCTest

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Group semantics across real processes (issue 4, item 4): `abe-spool-worker` children publish
/// and consume one spool at once; the union of what a group's members print is every message,
/// and a message is printed twice only when the member that held it was killed.
final class MultiProcessTests: SpoolWorkerTestCase {
    /// Bound of every wait: a hung provider fails the test instead of hanging it.
    private let deadline = Duration.seconds(60)

    /// Two publisher processes at once (cross-process sequence allocation), then three consumer
    /// processes of one group: everything delivered, nothing twice, ids gapless.
    func testCompetingConsumerProcessesShareAGroupWithoutDuplicates() async throws {
        let key = "orders"
        let publishers = try [0, 1000].map { first in
            try startWorker(["publish", spoolDirectory, key, "\(first)", "1000", "--fsync", "always"])
        }
        for publisher in publishers {
            let termination = await publisher.waitForExit(timeout: deadline)
            XCTAssertEqual(termination, .exited(0), publisher.summary)
        }
        let first = Self.acked(publishers[0].lines)
        let second = Self.acked(publishers[1].lines)
        XCTAssertEqual(first, Array(0..<1000), "the first publisher's acknowledged publishes")
        XCTAssertEqual(second, Array(1000..<2000), "the second publisher's acknowledged publishes")

        let consumers = try (0..<3).map { _ in try startWorker(["consume", spoolDirectory, key, "workers", "30000"]) }
        let everything = Set(0..<2000)
        let complete = await waitUntilUnion(of: consumers, covers: everything)
        for consumer in consumers {
            let termination = await consumer.stop()
            XCTAssertEqual(termination, .exited(0), consumer.summary)
        }

        let perConsumer = consumers.map { Self.deliveries($0.lines) }
        let all = perConsumer.flatMap { $0 }
        let union = Set(all.map(\.n))
        XCTAssertTrue(complete, "not everything was delivered within \(deadline); missing: \(describeRanges(everything.subtracting(union)))")
        XCTAssertEqual(union, everything, "missing: \(describeRanges(everything.subtracting(union)))")
        let duplicates = Self.duplicates(all.map(\.n))
        XCTAssertTrue(duplicates.isEmpty, "delivered twice although no consumer was killed: \(describeRanges(duplicates))")
        XCTAssertEqual(all.filter { $0.count != 1 }.count, 0, "redeliveries although every message was acknowledged in time")
        // Both publishers drew from one sequence: the ids are exactly 1...2000.
        XCTAssertEqual(Set(all.compactMap { Int($0.id) }), Set(1...2000), "message ids are not one gapless sequence")
        for consumer in consumers {
            XCTAssertEqual(Self.badLines(consumer.lines), [], consumer.summary)
        }
        print("MultiProcessTests: deliveries per consumer process: \(perConsumer.map(\.count))")
    }

    /// Three consumer processes of one group; one holds its messages un-acked and is killed with
    /// SIGKILL. The survivors deliver everything; a number is printed twice only if the killed
    /// one printed it, and what the survivors got of the killed one's messages is a redelivery.
    func testMessagesOfAKilledConsumerProcessAreRedeliveredToTheSurvivors() async throws {
        let key = "jobs"
        let everything = Set(0..<2000)
        let backend = try FileSpoolBackend(configuration: FileSpoolConfiguration(directory: spoolDirectory))
        let messageKey = try MessageQueueKey(key)
        try await backend.publish((0..<2000).map { (key: messageKey, payload: ["n": .int(Int64($0))]) })
        await backend.close()

        // The visibility timeout is per consuming process (it sets the deadline of what that
        // process claims). The victim claims 8 at a time with 1 s, and holds each message 300 ms
        // before acknowledging it; the survivors claim with 30 s, so however slow a loaded
        // machine makes them, nothing they hold times out: every redelivery comes from the victim.
        let victim = try startWorker(["consume", spoolDirectory, key, "workers", "1000", "--hold-ms", "300", "--prefetch", "8"])
        let survivors = try (0..<2).map { _ in try startWorker(["consume", spoolDirectory, key, "workers", "30000", "--prefetch", "16"]) }
        let printedSome = await victim.waitUntil(timeout: deadline) { Self.deliveries($0).count >= 3 }
        XCTAssertTrue(printedSome, "the victim printed fewer than 3 messages: \(victim.summary)")
        victim.kill(SIGKILL)
        let victimEnd = await victim.waitForExit(timeout: deadline)
        XCTAssertEqual(victimEnd, .signalled(SIGKILL), victim.summary)
        let victimGot = Self.deliveries(victim.lines)
        let victimNumbers = Set(victimGot.map(\.n))

        let complete = await waitUntilUnion(of: survivors + [victim], covers: everything)
        for survivor in survivors {
            let termination = await survivor.stop()
            XCTAssertEqual(termination, .exited(0), survivor.summary)
        }

        let survivorGot = survivors.flatMap { Self.deliveries($0.lines) }
        let all = victimGot + survivorGot
        let union = Set(all.map(\.n))
        XCTAssertTrue(complete, "not everything was delivered within \(deadline); missing: \(describeRanges(everything.subtracting(union)))")
        XCTAssertEqual(union, everything, "missing: \(describeRanges(everything.subtracting(union)))")
        let duplicates = Self.duplicates(all.map(\.n))
        let unexplained = duplicates.subtracting(victimNumbers)
        XCTAssertTrue(unexplained.isEmpty, "delivered twice but never printed by the killed consumer: \(describeRanges(unexplained))")
        // What a survivor got of a message the victim had printed came after the victim's
        // delivery timed out or the victim died: a redelivery.
        let survivorCopies = survivorGot.filter { victimNumbers.contains($0.n) }
        XCTAssertEqual(survivorCopies.filter { $0.count < 2 }.map(\.n), [], "first deliveries of messages the killed consumer had printed")
        // The victim died holding messages (the one it was holding, the rest of its prefetch):
        // the survivors got them again, counted as redeliveries.
        let redelivered = survivorGot.filter { $0.count >= 2 }
        XCTAssertFalse(redelivered.isEmpty, "no redelivery reached the survivors although the killed consumer held messages")
        for worker in survivors + [victim] {
            XCTAssertEqual(Self.badLines(worker.lines), [], worker.summary)
        }
        print("MultiProcessTests: the killed consumer printed \(describeRanges(victimNumbers)); duplicates: \(describeRanges(duplicates)); "
            + "survivor redeliveries (deliveryCount ≥ 2): \(describeRanges(redelivered.map(\.n)))")
    }

    /// Fan-out across processes: two groups, each in its own process, consume while a third
    /// process publishes; each group receives every message exactly once.
    func testGroupsInDifferentProcessesEachReceiveEveryMessage() async throws {
        let key = "events"
        let everything = Set(0..<1000)
        let audit = try startWorker(["consume", spoolDirectory, key, "audit", "30000"])
        let billing = try startWorker(["consume", spoolDirectory, key, "billing", "30000"])
        try await audit.waitUntilReady()
        try await billing.waitUntilReady()
        let publisher = try startWorker(["publish", spoolDirectory, key, "0", "1000", "--fsync", "never"])

        let publisherEnd = await publisher.waitForExit(timeout: deadline)
        XCTAssertEqual(publisherEnd, .exited(0), publisher.summary)
        XCTAssertEqual(Self.acked(publisher.lines), Array(0..<1000), "the publisher's acknowledged publishes")
        let auditComplete = await waitUntilUnion(of: [audit], covers: everything)
        let billingComplete = await waitUntilUnion(of: [billing], covers: everything)
        for consumer in [audit, billing] {
            let termination = await consumer.stop()
            XCTAssertEqual(termination, .exited(0), consumer.summary)
        }

        for (name, consumer, complete) in [("audit", audit, auditComplete), ("billing", billing, billingComplete)] {
            let got = Self.deliveries(consumer.lines)
            let union = Set(got.map(\.n))
            XCTAssertTrue(complete, "group \(name) did not receive everything within \(deadline); missing: \(describeRanges(everything.subtracting(union)))")
            XCTAssertEqual(union, everything, "group \(name) is missing \(describeRanges(everything.subtracting(union)))")
            XCTAssertEqual(got.count, 1000, "group \(name) received duplicates: \(describeRanges(Self.duplicates(got.map(\.n))))")
            // Consumed as published, by one member: in publishing order.
            XCTAssertEqual(got.map(\.n), Array(0..<1000), "group \(name) did not receive the messages in order")
            XCTAssertEqual(Self.badLines(consumer.lines), [], consumer.summary)
        }
    }

    // MARK: Helpers

    /// Waits (bounded by ``deadline``) until the `got` lines of `workers` together cover `numbers`.
    private func waitUntilUnion(of workers: [ChildProcess], covers numbers: Set<Int>) async -> Bool {
        let end = ContinuousClock.now + deadline
        while ContinuousClock.now < end {
            var union = Set<Int>()
            for worker in workers { union.formUnion(Self.deliveries(worker.lines).map(\.n)) }
            if union.isSuperset(of: numbers) { return true }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    private static func duplicates(_ numbers: [Int]) -> Set<Int> {
        var seen = Set<Int>()
        var twice = Set<Int>()
        for n in numbers where !seen.insert(n).inserted { twice.insert(n) }
        return twice
    }
}
