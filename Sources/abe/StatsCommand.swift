import AbstractBackend
import AbstractBackendInMemory
import ArgumentParser

struct StatsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show each key's length, consumer groups, pending messages and dead letters.",
        discussion: """
            Per key: length (messages its log holds; acknowledged ones count until retention \
            removes them) and dead letters (messages in <key>:dead-letter). Per group: pending \
            (delivered and not acknowledged, including messages handed back with nack), \
            undelivered (not yet delivered to the group; - when the provider cannot tell) and the \
            age of the oldest pending message since it was published — the figure to alert on.

            A table for people; --json prints one JSON object: {"provider": …, "keys": [{"key", \
            "length", "deadLetters", "groups": [{"group", "pending", "undelivered", \
            "oldestPendingSeconds"}]}]}. The in-memory provider only knows the messages of its own \
            process, so here it has none.
            """
    )

    @OptionGroup var provider: ProviderOptions

    @Option(name: .customLong("key"), help: ArgumentHelp("A key to show (repeatable). Default: every key; dead-letter keys appear as their key's dead letters.", valueName: "key"))
    var keys: [String] = []

    @Flag(name: .long, help: "Print one JSON object instead of a table.")
    var json = false

    func validate() throws {
        do {
            for key in keys { _ = try MessageQueueKey(key) }
        } catch {
            throw ValidationError(error.message)
        }
    }

    func run() async throws {
        let keys = try self.keys.map { try MessageQueueKey($0) }
        let backend = try await provider.makeBackend()
        let name = type(of: backend).providerName
        let statistics: [KeyStatistics]
        do {
            guard let inspecting = backend as? any MessageQueueInspecting else {
                throw CLIFailure(.configuration, "the \(name) provider cannot report statistics")
            }
            statistics = try await inspecting.statistics(keys: keys.isEmpty ? nil : keys)
        } catch {
            await backend.close()
            throw error
        }
        await backend.close()
        Terminal.writeOutput(json ? Self.json(statistics, provider: name) + "\n" : Self.table(statistics, provider: name))
    }

    static func json(_ statistics: [KeyStatistics], provider: String) -> String {
        let keys = statistics.map { key -> JSONValue in
            let groups = key.groups.map { group -> JSONValue in
                [
                    "group": .string(group.group.name),
                    "pending": .int(Int64(group.pending)),
                    "undelivered": group.undelivered.map { .int(Int64($0)) } ?? .null,
                    "oldestPendingSeconds": group.oldestPendingAge.map { .double(($0.seconds * 1000).rounded() / 1000) } ?? .null,
                ]
            }
            return [
                "key": .string(key.key.rawValue),
                "length": .int(Int64(key.length)),
                "deadLetters": .int(Int64(key.deadLetters)),
                "groups": .array(groups),
            ]
        }
        return JSONValue.object(["provider": .string(provider), "keys": .array(keys)]).description
    }

    static func table(_ statistics: [KeyStatistics], provider: String) -> String {
        guard !statistics.isEmpty else {
            let scope = provider == InMemoryBackend.providerName ? "; the memory provider only knows the messages of its own process" : ""
            return "no keys (provider \(provider)\(scope))\n"
        }
        var table = TextTable(
            header: ["KEY", "LENGTH", "DEAD LETTERS", "GROUP", "PENDING", "UNDELIVERED", "OLDEST PENDING"],
            rightAligned: [1, 2, 4, 5, 6]
        )
        for key in statistics {
            let keyColumns = [key.key.rawValue, "\(key.length)", "\(key.deadLetters)"]
            guard !key.groups.isEmpty else {
                table.rows.append(keyColumns + ["-", "", "", ""])
                continue
            }
            for (index, group) in key.groups.enumerated() {
                table.rows.append(
                    (index == 0 ? keyColumns : ["", "", ""])
                        + [group.group.name, "\(group.pending)", group.undelivered.map(String.init) ?? "-", group.oldestPendingAge.map(Self.age) ?? "-"]
                )
            }
        }
        return table.rendered
    }

    /// `850ms`, `12.3s`, `4m05s`, `2h03m`, `3d04h`.
    static func age(_ duration: Duration) -> String {
        let seconds = duration.seconds
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        if seconds < 60 { return "\((seconds * 10).rounded() / 10)s" }
        let whole = Int(seconds)
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        if whole < 3600 { return "\(whole / 60)m\(two(whole % 60))s" }
        if whole < 86_400 { return "\(whole / 3600)h\(two(whole % 3600 / 60))m" }
        return "\(whole / 86_400)d\(two(whole % 86_400 / 3600))h"
    }
}
