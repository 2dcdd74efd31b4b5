import AbstractBackend

/// What the Redis server says about itself, for `abe doctor`: whether it answers, its version,
/// and the settings that decide whether queued messages survive a restart or memory pressure.
package struct RedisServerReport: Sendable {
    /// The time `PING` took, connecting included when no connection was open.
    package var roundTrip: Duration
    /// `redis_version` from `INFO server`.
    package var version: String?
    /// `redis_mode` from `INFO server`: `standalone`, `cluster` or `sentinel`.
    package var mode: String?
    /// `aof_enabled` from `INFO persistence`, readable even where `CONFIG` is not allowed.
    package var appendOnlyEnabled: Bool?
    /// `CONFIG GET save`: the RDB snapshot schedule, empty when snapshots are off.
    package var save: String?
    /// `CONFIG GET maxmemory-policy`: anything but `noeviction` lets Redis delete queued messages
    /// under memory pressure.
    package var maxMemoryPolicy: String?
    /// The server's answer when `CONFIG GET` is refused (renamed command, or an ACL user without
    /// the permission).
    package var configRefusal: String?
}

extension RedisBackend {
    /// Connects (when not connected), sends `PING`, then `INFO server`, `INFO persistence` and
    /// `CONFIG GET save` / `maxmemory-policy` in one pipelined write on the command connection.
    ///
    /// Throws ``MessageQueueError/Code/unavailable`` when the server cannot be reached, and
    /// ``MessageQueueError/Code/invalidConfiguration`` when it refuses the credentials.
    package func serverReport() async throws(MessageQueueError) -> RedisServerReport {
        guard !isClosed else { throw .closed(Self.providerName) }
        let start = ContinuousClock.now
        _ = try await commands.value("PING")
        var report = RedisServerReport(roundTrip: ContinuousClock.now - start)
        var command = RESPCommand("INFO", "server")
        command.append(["INFO", "persistence"])
        command.append(["CONFIG", "GET", "save"])
        command.append(["CONFIG", "GET", "maxmemory-policy"])
        let replies = try await commands.values(command)
        let server = Self.infoFields(replies[0])
        report.version = server["redis_version"]
        report.mode = server["redis_mode"]
        report.appendOnlyEnabled = Self.infoFields(replies[1])["aof_enabled"].map { $0 == "1" }
        for (index, reply) in replies[2...].enumerated() {
            if let refusal = reply.errorMessage {
                report.configRefusal = refusal
                continue
            }
            // [name, value]; an empty array when the server does not know the parameter.
            let value = (reply.elements ?? []).dropFirst().first?.text
            if index == 0 { report.save = value } else { report.maxMemoryPolicy = value }
        }
        return report
    }

    /// The CPU time the server has used since it started, in seconds: `used_cpu_sys` plus
    /// `used_cpu_user` from `INFO cpu` (every thread of the server). `abe bench` reads it before
    /// and after a scenario.
    package func serverCPUSeconds() async throws(MessageQueueError) -> Double {
        guard !isClosed else { throw .closed(Self.providerName) }
        let fields = Self.infoFields(try await commands.value("INFO", "cpu"))
        guard let system = fields["used_cpu_sys"].flatMap(Double.init), let user = fields["used_cpu_user"].flatMap(Double.init) else {
            throw MessageQueueError(.unavailable, "the Redis server's INFO cpu has no used_cpu_sys and used_cpu_user")
        }
        return system + user
    }

    /// The `name:value` lines of an `INFO` reply.
    private static func infoFields(_ reply: RedisValue) -> [String: String] {
        var fields: [String: String] = [:]
        for line in (reply.text ?? "").split(whereSeparator: \.isNewline) {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[String(line[..<colon])] = String(line[line.index(after: colon)...])
        }
        return fields
    }
}
