import AbstractBackend
import ArgumentParser
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct ConsumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consume",
        abstract: "Receive messages as a member of a consumer group and print one JSON line each.",
        discussion: """
            Each line is {"key": …, "id": …, "deliveryCount": …, "payload": {…}} (payload members \
            sorted by name). A message is acknowledged after its line is written, unless --no-ack: \
            then it stays pending and is delivered again (to any member of the group) after the \
            provider's visibility timeout. Without --key every key except dead-letter keys is read; \
            name a <key>:dead-letter key to read dead letters.

            Runs until --count messages were printed, or until --timeout passes without a new \
            message; with neither, until interrupted. Exit status 0 in both cases. A message that \
            cannot be written is handed back to the group (nack): when the reader went away \
            (abe consume | head -n 3) abe stops with status 0, on other write errors with 1.
            """
    )

    @OptionGroup var provider: ProviderOptions

    @Option(name: .customLong("key"), help: ArgumentHelp("A key to consume (repeatable). Default: every key except dead-letter keys.", valueName: "key"))
    var keys: [String] = []

    @Option(name: .long, help: "The consumer group to join. Default: ABE_DEFAULT_GROUP, else \"default\".")
    var group: String?

    @Option(name: .long, help: "Stop after printing this many messages.")
    var count: Int?

    @Option(name: .long, help: ArgumentHelp("Stop when no message arrived for this long: 5 (seconds), 2.5s, 500ms or 1m.", valueName: "duration"))
    var timeout: String?

    @Flag(name: .customLong("no-ack"), help: "Leave messages unacknowledged: they are delivered again after the visibility timeout.")
    var noAck = false

    func validate() throws {
        do {
            for key in keys { _ = try MessageQueueKey(key) }
            if let group { _ = try ConsumerGroup(group) }
        } catch {
            throw ValidationError(error.message)
        }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if let timeout, Self.parseDuration(timeout) == nil {
            throw ValidationError("--timeout \(timeout.debugDescription) is not a duration above zero; use e.g. 5, 2.5s, 500ms or 1m")
        }
    }

    func run() async throws {
        let keys = try self.keys.map { try MessageQueueKey($0) }
        let group = try self.group.map { try ConsumerGroup($0) }
        let timeout = self.timeout.flatMap(Self.parseDuration)
        let backend = try await provider.makeBackend()
        do {
            // A consumer keeps retrying a server it cannot reach, as an application's should; a
            // command-line run says so at once instead (exit status 4).
            if let inspecting = backend as? any MessageQueueInspecting {
                _ = try await inspecting.statistics(keys: [])
            }
            try await consume(backend, keys: keys, group: group, idleTimeout: timeout)
        } catch {
            await backend.close()
            throw error
        }
        // Closing also sends acknowledgements a provider batches.
        await backend.close()
    }

    private func consume(_ backend: any MessageQueueBackend, keys: [MessageQueueKey], group: ConsumerGroup?, idleTimeout: Duration?) async throws {
        let activity = Activity()
        let limit = count
        let acknowledge = !noAck
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                let messages = keys.isEmpty ? backend.consume(group: group) : backend.consume(keys: keys, group: group)
                var printed = 0
                for try await message in messages {
                    activity.touch()
                    guard Terminal.writeOutput(bytes: try Self.line(for: message)) else {
                        let code = errno
                        // Nobody saw it: back to the group at once rather than after the visibility timeout.
                        try? await message.nack(reason: "abe consume could not write it to standard output")
                        if code == EPIPE { return }
                        throw CLIFailure(.failure, "cannot write to standard output: \(String(cString: strerror(code))); the message was handed back to the group")
                    }
                    if acknowledge { try await message.ack() }
                    printed += 1
                    if printed == limit { return }
                }
            }
            if let idleTimeout {
                tasks.addTask {
                    while true {
                        let idle = activity.idle
                        if idle >= idleTimeout { return }
                        try await Task.sleep(for: idleTimeout - idle)
                    }
                }
            }
            // Whichever ends first ends the run; the consumer, cancelled, leaves what it fetched
            // and did not print to the group.
            try await tasks.next()
            tasks.cancelAll()
        }
    }

    /// `{"key":…,"id":…,"deliveryCount":…,"payload":…}` and a line break.
    static func line(for message: MessageQueueMessage) throws -> [UInt8] {
        var bytes = Array("{\"key\":".utf8)
        bytes += JSONValue.string(message.key.rawValue).description.utf8
        bytes += ",\"id\":".utf8
        bytes += JSONValue.string(message.id).description.utf8
        bytes += ",\"deliveryCount\":\(message.deliveryCount),\"payload\":".utf8
        try message.payload.appendJSON(to: &bytes, sortedKeys: true)
        bytes += "}\n".utf8
        return bytes
    }

    /// `5`, `2.5s`, `500ms`, `1m`: a duration above zero.
    static func parseDuration(_ text: String) -> Duration? {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        let lowered = text.lowercased()
        let unit = units.first { lowered.hasSuffix($0.suffix) }
        guard let value = Double(lowered.dropLast(unit?.suffix.count ?? 0)), value.isFinite, value > 0, value < 1e9 else { return nil }
        return .seconds(value * (unit?.seconds ?? 1))
    }
}

/// When the consumer last received a message, for `--timeout`.
private final class Activity: Sendable {
    private let last = Mutex(ContinuousClock.now)

    func touch() {
        last.withLock { $0 = .now }
    }

    var idle: Duration {
        ContinuousClock.now - last.withLock { $0 }
    }
}
