// abe-chaos: the reliability harness (issue 7) that Scripts/chaos builds and runs; docs/chaos.md.
//
//   abe-chaos --work-dir DIR [--memory-dir DIR] [--long] [--only TEXT]
//
// --memory-dir names a tmpfs directory for the AOF of the Redis restart scenario (see
// Scripts/chaos for why); without it the AOF goes under --work-dir.
//
// Runs each fault scenario (with --only, those whose name contains TEXT) with real worker processes (abe-consumer-worker, abe-spool-worker)
// and private redis-servers, prints each scenario's details as it ends, then a table of the
// counters and, last, `N passed, N failed`. Exits 1 when a scenario failed, 2 on bad arguments.

import Foundation
import Logging
import TestSupport

// The in-process backends of the checks log nothing a reader of the report needs.
LoggingSystem.bootstrap { _ in SwiftLogNoOpLogHandler() }

var long = false
var workDirectory: String?
var memoryDirectory: String?
var only: String?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--long": long = true
    case "--work-dir": workDirectory = arguments.popFirst()
    case "--memory-dir": memoryDirectory = arguments.popFirst()
    case "--only": only = arguments.popFirst()
    default:
        FileHandle.standardError.write(Data("abe-chaos: unknown argument \(argument); usage: abe-chaos --work-dir DIR [--memory-dir DIR] [--long] [--only TEXT]\n".utf8))
        exit(2)
    }
}
guard let workDirectory, FileManager.default.fileExists(atPath: workDirectory) else {
    FileHandle.standardError.write(Data("abe-chaos: --work-dir must name an existing directory\n".utf8))
    exit(2)
}
for worker in [Fleet.consumerWorker, Fleet.spoolWorker] where ChildProcess.executablePath(worker) == nil {
    FileHandle.standardError.write(Data("abe-chaos: \(ChildProcess.notFound(worker))\n".utf8))
    exit(2)
}
do {
    try RedisServer.locate()
} catch {
    FileHandle.standardError.write(Data("abe-chaos: \(error)\n".utf8))
    exit(2)
}

let plan = Plan(long: long, workDirectory: workDirectory, memoryDirectory: memoryDirectory ?? workDirectory)
let started = ContinuousClock.now
report("abe-chaos: \(long ? "long" : "short") form, work directory \(workDirectory)")
typealias Scenario = (name: String, run: (Fleet, inout Outcome) async throws -> Void)
let scenarios: [Scenario] = [
    ("bad configuration", { fleet, outcome in
        try await BadConfiguration().run(fleet, &outcome)
    }),
    ("bad input, redis", { fleet, outcome in
        try await RedisBadInput(directory: plan.path("redis-bad")).run(fleet, &outcome)
    }),
    ("bad input, file spool", { fleet, outcome in
        try await SpoolBadInput(directory: plan.path("spool-bad")).run(fleet, &outcome)
    }),
    ("consumer kills, redis", { fleet, outcome in
        let server = try fleet.redisServer(directory: plan.path("redis-kill"), persistence: ["--appendonly", "no", "--save", ""])
        try await server.start()
        let scenario = ConsumerKills(
            environment: Plan.redisEnvironment(server),
            prefetch: RedisRestart.redisPrefetch + ConsumerKills.concurrency,
            prefetchReason: "256 per read, 3 reads ahead, plus \(ConsumerKills.concurrency) handlers",
            kills: plan.consumerKills
        )
        try await scenario.run(fleet, &outcome)
    }),
    ("consumer kills, file spool", { fleet, outcome in
        let prefetch = 32
        let scenario = ConsumerKills(
            environment: [
                "QUEUE_BACKEND": "file-spool", "ABE_SPOOL_DIR": plan.path("spool-kill"),
                "ABE_SPOOL_VISIBILITY_TIMEOUT": Plan.visibilityVariable, "ABE_SPOOL_MAX_DELIVERIES": Plan.unlimitedDeliveries,
                "ABE_SPOOL_PREFETCH": "\(prefetch)",
            ],
            prefetch: prefetch + ConsumerKills.concurrency,
            prefetchReason: "ABE_SPOOL_PREFETCH=\(prefetch), plus \(ConsumerKills.concurrency) handlers",
            kills: plan.consumerKills
        )
        try await scenario.run(fleet, &outcome)
    }),
    ("redis restart, AOF everysec", { fleet, outcome in
        try await RedisRestart(restarts: plan.redisRestarts, directory: plan.memoryDirectory + "/redis-aof").run(fleet, &outcome)
    }),
    ("redis restart, no persistence", { fleet, outcome in
        try await RedisVanishingRestart(restarts: plan.vanishingRestarts, directory: plan.path("redis-vanish")).run(fleet, &outcome)
    }),
    ("spool writer kills", { fleet, outcome in
        try await SpoolWriterKills(kills: plan.writerKills, directory: plan.path("spool-crash")).run(fleet, &outcome)
    }),
]
var outcomes: [Outcome] = []
for scenario in scenarios where only.map({ scenario.name.contains($0) }) ?? true {
    let slug = scenario.name.replacingOccurrences(of: ", ", with: "-").replacingOccurrences(of: " ", with: "-")
    outcomes.append(await runScenario(scenario.name, logDirectory: plan.path("logs/" + slug), scenario.run))
}
guard !outcomes.isEmpty else {
    FileHandle.standardError.write(Data("abe-chaos: no scenario matches --only \(only ?? ""); the scenarios: \(scenarios.map(\.name).joined(separator: ", "))\n".utf8))
    exit(2)
}

report("")
report(Report.table(outcomes))
let elapsed = ContinuousClock.now - started
report("total \(elapsed.components.seconds) s; duplicates are allowed up to kills × messages a consumer holds un-acknowledged (see each scenario above)")
let failed = outcomes.filter { !$0.passed }.count
report("\(outcomes.count - failed) passed, \(failed) failed")
exit(failed == 0 ? 0 : 1)
