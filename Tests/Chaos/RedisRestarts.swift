import Foundation
import TestSupport

/// Scenario 2: a redis-server with `appendonly yes` / `appendfsync everysec` is killed with SIGKILL
/// and restarted on the same port while two publishers (retrying failed publishes) and three
/// consumers run. No acknowledged publish may be lost, and the consumers must resume by
/// themselves.
///
/// Under `everysec` Redis writes the AOF to the kernel before it replies (fsync follows within a
/// second), so killing the process — not the machine — must lose nothing it acknowledged.
///
/// The consumers keep up with the publishers, so at a kill little is published and not yet
/// processed; a second group, `audit`, created before the first publish and read only after the
/// last restart, checks that the stream itself kept every acknowledged publish.
struct RedisRestart {
    static let key = "chaos-restart"
    static let group = "chaos"
    static let members = 3
    static let concurrency = 4
    static let publishRate = 500
    /// See ``ConsumerKills/prefetch``: 256 entries per read, up to three reads ahead
    /// (Providers/Redis/ConsumerSession.swift), plus the handlers running.
    static let redisPrefetch = 256 * 3
    static let auditGroup = "audit"

    let restarts: Int
    let directory: String

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        let server = try fleet.redisServer(directory: directory, persistence: ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""])
        try await server.start()
        fleet.environment = Plan.redisEnvironment(server)
        var consumers: [ChildProcess] = []
        for _ in 0..<Self.members {
            consumers.append(try fleet.consumer(key: Self.key, group: Self.group, concurrency: Self.concurrency, holdMilliseconds: 1))
        }
        for consumer in consumers { try await consumer.waitUntilReady() }
        let created = try await RedisAdmin.send(port: server.port, ["XGROUP", "CREATE", Self.key, Self.auditGroup, "0", "MKSTREAM"])
        outcome.check(created == [.status("OK")], "XGROUP CREATE of the audit group answered \(created)")
        // Publishing goes on for a few seconds after the last restart, so that every consumer
        // shows it resumed.
        let seconds = Double(restarts) * 2.5 + 5
        let count = Int(seconds * Double(Self.publishRate))
        let publishers = try [0, 1_000_000].map { try fleet.publisher(key: Self.key, first: $0, count: count, rate: Self.publishRate) }

        var linesAtLastRestart: [Int] = []
        for _ in 0..<restarts {
            try await Task.sleep(for: .milliseconds(Int.random(in: 1_500...2_500)))
            await server.kill()
            outcome.kills += 1
            try await Task.sleep(for: .milliseconds(Int.random(in: 100...500)))
            try await server.restart()
            linesAtLastRestart = consumers.map { $0.lines.count }
        }

        var publications: [Publication] = []
        for publisher in publishers {
            publications.append(await finish(publisher, within: .seconds(Int(seconds) + 90), &outcome))
        }
        let acked = Set(publications.flatMap(\.lines.acked))
        let complete = await waitUntilProcessed(acked, by: { consumers }, timeout: .seconds(60))
        outcome.check(complete, "not every acknowledged message was processed within 60 s of the last publish")
        try await Task.sleep(for: Plan.visibilityTimeout + .seconds(1))
        for consumer in consumers {
            outcome.check(!consumer.hasExited, "a consumer did not survive the restarts: \(consumer.summary)")
        }
        for (consumer, mark) in zip(consumers, linesAtLastRestart) {
            let after = WorkerLines(Array(consumer.lines.dropFirst(mark))).handled
            outcome.check(!after.isEmpty, "a consumer processed nothing after the last restart: \(consumer.summary)")
        }
        outcome.failures += await fleet.stop(consumers)

        let auditor = try fleet.consumer(key: Self.key, group: Self.auditGroup, concurrency: 8, holdMilliseconds: 0)
        let audited = await waitUntilProcessed(acked, by: { [auditor] }, timeout: .seconds(60))
        outcome.check(audited, "the audit group did not get every acknowledged message within 60 s")
        outcome.failures += await fleet.stop([auditor])
        let audit = WorkerLines(auditor.lines)
        let auditCounters = Counters(publications: publications, processed: audit.processed, bad: audit.bad)
        outcome.check(auditCounters.lost.isEmpty, "the stream lost acknowledged publishes (audit group): \(describeRanges(auditCounters.lost))")
        outcome.check(auditCounters.unexpected == 0, "the audit group got unexpected messages: \(auditCounters.unexpectedDescription)")

        let reports = consumers.map { WorkerLines($0.lines) }
        outcome.counters = Counters(publications: publications, processed: reports.flatMap(\.processed), bad: reports.flatMap(\.bad))
        let retries = publications.reduce(0) { $0 + $1.lines.retries.count }
        let held = Self.redisPrefetch + Self.concurrency
        outcome.duplicateAllowance = outcome.kills * Self.members * held + retries
        outcome.allowanceReason = "\(outcome.kills) server kills × \(Self.members) consumers × \(held) held per consumer (acknowledgements in flight are lost with the server), plus \(retries) retried publishes (each may be stored twice)"
        let loads = server.log.filter { $0.contains("loaded from append only file") }.count
        let failedAcknowledgements = consumers.reduce(0) { $0 + logLines($1.errorText, level: "warning", containing: "the acknowledgement failed").count }
        outcome.notes.append(
            "audit group, read after the last restart: \(auditCounters.delivered) of \(auditCounters.publishedAcked) acknowledged publishes, "
                + "\(auditCounters.lost.count) lost, \(auditCounters.duplicated) stored twice (retried publishes)"
        )
        outcome.notes.append(
            "\(outcome.kills) SIGKILLs of redis-server, AOF reloaded \(loads) times; \(retries) publishes retried; "
                + "\(failedAcknowledgements) acknowledgements failed while the server was away (those messages are redelivered: the duplicates); "
                + "consumers never restarted; duplicates allowed: \(outcome.allowanceReason)"
        )
        outcome.check(loads >= restarts, "redis-server reloaded its AOF \(loads) times in \(restarts) restarts")
    }
}

/// Scenario 3: a redis-server without persistence is killed and restarted, so the stream and the
/// group vanish. The consumers must notice (`NOGROUP`), recreate the group, say so at warning
/// level, and process what is published afterwards without being restarted.
struct RedisVanishingRestart {
    static let key = "chaos-vanish"
    static let group = "chaos"
    static let members = 3
    static let perRound = 300

    let restarts: Int
    let directory: String

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        let server = try fleet.redisServer(directory: directory, persistence: ["--appendonly", "no", "--save", ""])
        try await server.start()
        fleet.environment = Plan.redisEnvironment(server)
        var consumers: [ChildProcess] = []
        for _ in 0..<Self.members {
            consumers.append(try fleet.consumer(key: Self.key, group: Self.group, concurrency: 2, holdMilliseconds: 1))
        }
        for consumer in consumers { try await consumer.waitUntilReady() }

        var publications: [Publication] = []
        for round in 0...restarts {
            let warningsBefore = groupWarnings(consumers)
            if round > 0 {
                await server.kill()
                outcome.kills += 1
                try await server.restart()
            }
            // Each round is processed completely before the next kill: the server loses the rest.
            let publisher = try fleet.publisher(key: Self.key, first: round * 100_000, count: Self.perRound)
            let publication = await finish(publisher, within: .seconds(90), &outcome)
            publications.append(publication)
            let complete = await waitUntilProcessed(Set(publication.lines.acked), by: { consumers }, timeout: .seconds(60))
            outcome.check(complete, "round \(round): not every acknowledged message was processed within 60 s")
            if round > 0 {
                // Standard error is read on a thread of its own: the warning may trail the
                // processed lines on standard output.
                let warned = await eventually(within: .seconds(10)) { groupWarnings(consumers) > warningsBefore }
                outcome.check(warned, "restart \(round): no consumer logged a warning that it recreated the group within 10 s")
            }
        }
        for consumer in consumers {
            outcome.check(!consumer.hasExited, "a consumer did not survive the restarts: \(consumer.summary)")
        }
        let warned = consumers.filter { groupWarnings([$0]) > 0 }.count
        outcome.failures += await fleet.stop(consumers)

        let reports = consumers.map { WorkerLines($0.lines) }
        outcome.counters = Counters(publications: publications, processed: reports.flatMap(\.processed), bad: reports.flatMap(\.bad))
        outcome.allowanceReason = "no consumer was killed, and the server forgets acknowledgements with everything else"
        outcome.notes.append(
            "\(outcome.kills) restarts without persistence; \(warned) of \(Self.members) consumers logged "
                + "\"redis consumer group missing; recreating it\" at warning level (\(groupWarnings(consumers)) times); consumers never restarted"
        )
    }

    /// How many warnings about a recreated group `consumers` logged (on standard error).
    private func groupWarnings(_ consumers: [ChildProcess]) -> Int {
        consumers.reduce(0) { $0 + logLines($1.errorText, level: "warning", containing: "recreating it").count }
    }
}
