import AbstractBackend
import AbstractBackendRedis

/// The live checks of `abe doctor` for Redis: the configuration, a connection and `PING`, the
/// server version, and the settings that decide whether queued messages survive a restart or
/// memory pressure.
enum RedisDoctor {
    /// `XAUTOCLAIM`, which redelivery rests on, arrived in Redis 6.2.
    static let minimumVersion = [6, 2]

    static func check(_ environment: [String: String], output: inout DoctorOutput) async throws {
        let configuration = try await output.checked("configuration") { try RedisConfiguration(environment: environment) }
        output.ok("configuration: \(configuration)")
        let backend = try await output.checked("configuration") { try RedisBackend(configuration: configuration) }
        let report: RedisServerReport
        do {
            report = try await output.checked("connect to \(configuration.endpoint)") { try await backend.serverReport() }
        } catch {
            await backend.close()
            throw error
        }
        await backend.close()
        output.ok("PING answered by \(configuration.endpoint) in \(milliseconds(report.roundTrip)) ms")

        let version = report.version ?? "unknown"
        let numbers = version.split(separator: ".").compactMap { Int($0) }
        if !numbers.isEmpty && numbers.lexicographicallyPrecedes(minimumVersion) {
            output.line("  FAIL  server version")
            throw CLIFailure(
                .unavailable,
                "Redis \(version) at \(configuration.endpoint) is too old: the provider needs 6.2 or later (XAUTOCLAIM); upgrade the server"
            )
        }
        output.ok("Redis \(version), \(report.mode ?? "unknown") mode")
        if report.mode == "cluster" {
            output.warn("cluster mode: the provider does not follow MOVED redirects yet; use a standalone server")
        }

        if let refusal = report.configRefusal {
            output.warn("CONFIG GET refused (\(refusal)); RDB snapshots and maxmemory-policy unknown")
        }
        let appendOnly = report.appendOnlyEnabled
        let snapshots = report.save.map { !$0.allSatisfy(\.isWhitespace) }
        switch (appendOnly, snapshots) {
        case (true?, _):
            output.ok("persistence: appendonly yes" + (report.save.map { ", save \($0.debugDescription)" } ?? ""))
        case (false?, false?):
            output.warn("persistence off (appendonly no, save \"\"): a restart of Redis loses every queued message; set appendonly yes")
        case (false?, true?):
            output.warn("persistence: RDB snapshots only (save \(report.save?.debugDescription ?? "")); a crash loses what arrived since the last snapshot; set appendonly yes")
        default:
            output.warn("persistence unknown: INFO persistence did not say whether appendonly is on")
        }
        if let policy = report.maxMemoryPolicy {
            if policy == "noeviction" {
                output.ok("maxmemory-policy noeviction")
            } else {
                output.warn("maxmemory-policy \(policy) lets Redis delete keys, queues included, when memory runs out; set noeviction")
            }
        }
    }

    private static func milliseconds(_ duration: Duration) -> Double {
        (duration.seconds * 10_000).rounded() / 10
    }
}
