import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Scenario 1: a group of three consumer processes (`MessageConsumer`s) while a publisher runs;
/// every 200–500 ms one of them, at random, is killed with SIGKILL and a replacement started.
/// Every acknowledged publish must be processed; a killed consumer's messages come back after the
/// visibility timeout.
struct ConsumerKills {
    static let key = "chaos-kill"
    static let group = "chaos"
    static let members = 3
    static let concurrency = 4
    /// Handlers take long enough that the group runs near its capacity, so that kills land on
    /// handlers at work and on messages fetched ahead.
    static let holdMilliseconds = 20
    static let publishRate = 400

    /// The provider's variables (besides the visibility timeout and dead-letter limit the plan sets).
    let environment: [String: String]
    /// The most messages a consumer holds un-acknowledged: what the provider fetched ahead plus
    /// the handlers running. A kill can cost each of them one duplicate, at most.
    let prefetch: Int
    let prefetchReason: String
    let kills: Int

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        fleet.environment = environment
        var live: [ChildProcess] = []
        for _ in 0..<Self.members { live.append(try startConsumer(fleet)) }
        for consumer in live { try await consumer.waitUntilReady() }
        // Enough messages to keep the group busy for the whole kill phase.
        let seconds = Double(kills) * 0.4 + 1
        let publisher = try fleet.publisher(key: Self.key, first: 0, count: Int(seconds * Double(Self.publishRate)), rate: Self.publishRate)

        var killed = 0
        for _ in 0..<kills {
            try await Task.sleep(for: .milliseconds(Int.random(in: 200...500)))
            // The victim is one that is up, so that the kill lands on a consumer at work.
            var up = live.indices.filter { live[$0].lines.contains("ready") }
            if up.isEmpty {
                try await live[0].waitUntilReady()
                up = [0]
            }
            let index = up.randomElement()!
            let victim = live[index]
            victim.kill(SIGKILL)
            let end = await victim.waitForExit()
            outcome.check(end == .signalled(SIGKILL), "a consumer ended before the kill: \(victim.summary)")
            killed += 1
            live[index] = try startConsumer(fleet)
        }

        let publication = await finish(publisher, within: .seconds(Int(seconds) + 60), &outcome)
        let consumers = { fleet.processes.filter { $0 !== publisher.process } }
        let complete = await waitUntilProcessed(Set(publication.lines.acked), by: consumers, timeout: .seconds(60))
        outcome.check(complete, "not every acknowledged message was processed within 60 s of the last kill")
        // Time for deliveries whose acknowledgement a kill lost to come back, so they are counted.
        try await Task.sleep(for: Plan.visibilityTimeout + .seconds(1))
        outcome.failures += await fleet.stop(live)

        let reports = consumers().map { WorkerLines($0.lines) }
        outcome.counters = Counters(publications: [publication], processed: reports.flatMap(\.processed), bad: reports.flatMap(\.bad))
        outcome.kills = killed
        outcome.duplicateAllowance = killed * prefetch
        outcome.allowanceReason = "\(killed) consumer kills × \(prefetch) held per consumer (\(prefetchReason))"
        let starts = reports.flatMap(\.starts)
        outcome.notes.append(
            "\(killed) consumers killed, \(consumers().count) started; \(starts.filter { $0.deliveryCount > 1 }.count) redeliveries, "
                + "highest delivery count \(starts.map(\.deliveryCount).max() ?? 0); duplicates allowed: \(outcome.allowanceReason)"
        )
    }

    private func startConsumer(_ fleet: Fleet) throws -> ChildProcess {
        try fleet.consumer(key: Self.key, group: Self.group, concurrency: Self.concurrency, holdMilliseconds: Self.holdMilliseconds)
    }
}
