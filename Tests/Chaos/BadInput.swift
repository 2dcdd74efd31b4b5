import AbstractBackend
import AbstractBackendRedis
import Foundation
import TestSupport

/// Scenario 5 on Redis: entries a foreign producer writes to a stream with raw `XADD` — no `data`
/// field, `data` that is not JSON, a JSON array, and a valid 16 MiB payload — among our own
/// messages, and a publish to the reserved registry key. docs/redis.md: an entry without a JSON
/// object in `data` goes to `<key>:dead-letter` with reason `invalid-payload`, the problem in
/// `lastError` and `{"raw": <text>}` as payload, is acknowledged, and consumption goes on; a
/// foreign entry holding a JSON object is consumed like our own.
struct RedisBadInput {
    static let key = "chaos-bad"
    static let group = "chaos"
    static let bigNumber = 50
    static let bigBytes = 16 << 20

    let directory: String

    /// A foreign entry: its fields, and what its dead letter must say (nil: it is valid).
    private struct Foreign {
        let fields: [[UInt8]]
        let lastError: String?
        let raw: String
    }

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        let server = try fleet.redisServer(directory: directory, persistence: ["--appendonly", "no", "--save", ""])
        try await server.start()
        let environment = Plan.redisEnvironment(server, unlimitedDeliveries: false)
        fleet.environment = environment
        let consumer = try fleet.consumer(key: Self.key, group: Self.group, concurrency: 2, holdMilliseconds: 0)
        try await consumer.waitUntilReady()
        var publications = [await finish(try fleet.publisher(key: Self.key, first: 0, count: Self.bigNumber), within: .seconds(60), &outcome)]

        let big = #"{"n":\#(Self.bigNumber),"pad":""# + String(repeating: "x", count: Self.bigBytes - 32) + #""}"#
        let foreign = [
            Foreign(fields: ["source", "foreign"].map { Array($0.utf8) }, lastError: "no data field", raw: ""),
            Foreign(fields: ["data", "{not json"].map { Array($0.utf8) }, lastError: "not a JSON object", raw: "{not json"),
            Foreign(fields: ["data", "[1,2,3]"].map { Array($0.utf8) }, lastError: "not a JSON object", raw: "[1,2,3]"),
            Foreign(fields: [Array("data".utf8), Array(big.utf8)], lastError: nil, raw: ""),
        ]
        let replies = try await RedisAdmin.send(port: server.port, foreign.map { [Array("XADD".utf8), Array(Self.key.utf8), Array("*".utf8)] + $0.fields })
        let ids = replies.map { $0.text ?? "" }
        outcome.check(!replies.contains { if case .error = $0 { true } else { false } }, "XADD of the foreign entries failed: \(replies.map { $0.text ?? "" })")
        // The valid 16 MiB entry was published, by a foreign producer, and acknowledged by Redis.
        publications.append(Publication(first: Self.bigNumber, count: 1, lines: WorkerLines(["acked \(Self.bigNumber)"])))

        let backend = try loadBackend(providers: [RedisBackend.provider], environment: environment)
        do {
            try await backend.publish(["n": 0], to: MessageQueueKey("abe:keys"))
            outcome.failures.append("a publish to the registry key abe:keys was accepted")
        } catch let error as MessageQueueError {
            outcome.check(error.code == .invalidKey && error.message.contains("reserved"), "a publish to abe:keys failed with \(error), not invalid-key naming the reservation")
        }
        publications.append(await finish(try fleet.publisher(key: Self.key, first: Self.bigNumber + 1, count: 49), within: .seconds(60), &outcome))

        let complete = await waitUntilProcessed(Set(0..<100), by: { [consumer] }, timeout: .seconds(60))
        outcome.check(complete, "the consumer did not process every valid message (the 16 MiB one included) within 60 s")
        let letters = try await deadLetters(backend, count: 3)
        await backend.close()
        for (entry, id) in zip(foreign, ids) {
            guard let expected = entry.lastError else { continue }
            guard let letter = letters.first(where: { $0.id == id }) else {
                outcome.failures.append("no dead letter for the foreign entry \(id) (\(expected))")
                continue
            }
            outcome.check(
                letter.reason == .invalidPayload && letter.key.rawValue == Self.key && letter.group.name == Self.group
                    && (letter.lastError ?? "").contains(expected) && letter.payload["raw"]?.stringValue == entry.raw,
                "the dead letter of \(id) is not the documented one: reason \(letter.reason), lastError \(letter.lastError ?? "none"), payload \(letter.payload.description.prefix(100))"
            )
        }
        outcome.check(letters.count == 3, "\(letters.count) dead letters instead of 3: \(letters.map(\.id))")
        // Acknowledgements are sent with the consumer's next write; give them a moment.
        var pending = ""
        for _ in 0..<50 {
            pending = try await RedisAdmin.send(port: server.port, ["XPENDING", Self.key, Self.group])[0].elements?.first.map { "\($0)" } ?? "?"
            if pending == "integer(0)" { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        outcome.check(pending == "integer(0)", "entries still pending in the group after consumption: \(pending)")
        outcome.failures += await fleet.stop([consumer])

        let report = WorkerLines(consumer.lines)
        outcome.counters = Counters(publications: publications, processed: report.processed, bad: report.bad)
        outcome.notes.append(
            "foreign entries \(ids.joined(separator: ", ")): no data field, invalid JSON and a JSON array dead-lettered as "
                + "invalid-payload with the problem and the raw text (\(letters.map { $0.lastError ?? "" }.joined(separator: " | "))); "
                + "the 16 MiB payload consumed; nothing left pending; abe:keys refused as a key"
        )
    }

    /// Reads `count` dead letters of the key through the public API (a group of its own), or what
    /// came within 20 s.
    private func deadLetters(_ backend: any MessageQueueBackend, count: Int) async throws -> [DeadLetter] {
        let deadLetterKey = try MessageQueueKey(Self.key).deadLetterKey
        let group = try ConsumerGroup("chaos-check")
        let reading = Task {
            var letters: [DeadLetter] = []
            for try await message in backend.consume(keys: [deadLetterKey], group: group) {
                letters.append(try DeadLetter(from: message.payload))
                try await message.ack()
                if letters.count == count { break }
            }
            return letters
        }
        let timeout = Task {
            try await Task.sleep(for: .seconds(20))
            reading.cancel()
        }
        defer { timeout.cancel() }
        return try await reading.value
    }
}

/// Scenario 5 on the file spool: a segment with a flipped byte inside one record and with
/// garbage appended after the last. docs/file-spool.md: the damaged record is logged, counted and
/// skipped while every other one is delivered; the garbage is a torn tail, never delivered, and
/// the next writer truncates it (logged) and appends after it.
struct SpoolBadInput {
    static let key = "chaos-bad"
    static let group = "chaos"
    static let flipped = 50

    let directory: String

    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        fleet.environment = ["QUEUE_BACKEND": "file-spool", "ABE_SPOOL_DIR": directory, "ABE_SPOOL_VISIBILITY_TIMEOUT": "10s"]
        var publications = [await finish(try fleet.publisher(key: Self.key, first: 0, count: 100), within: .seconds(60), &outcome)]

        let keyDirectory = directory + "/keys/" + Self.key
        let damage = try await onOwnThread("spool-damage") { try Self.damage(keyDirectory) }
        outcome.notes.append(damage)

        let consumer = try fleet.consumer(key: Self.key, group: Self.group, concurrency: 2, holdMilliseconds: 0)
        try await consumer.waitUntilReady()
        var intact = Set(0..<100)
        intact.remove(Self.flipped)
        let first = await waitUntilProcessed(intact, by: { [consumer] }, timeout: .seconds(30))
        outcome.check(first, "the consumer did not get every intact record within 30 s")

        let writer = try fleet.publisher(key: Self.key, first: 100, count: 10)
        publications.append(await finish(writer, within: .seconds(60), &outcome))
        let second = await waitUntilProcessed(Set(100..<110), by: { [consumer] }, timeout: .seconds(30))
        outcome.check(second, "the consumer did not get the messages published after the damage within 30 s")
        try await Task.sleep(for: .milliseconds(500))
        outcome.failures += await fleet.stop([consumer])

        outcome.check(!logLines(writer.process.errorText, level: "warning", containing: "torn tail").isEmpty, "the next writer did not log the truncated torn tail: \(writer.process.errorText)")
        outcome.check(!logLines(consumer.errorText, level: "error", containing: "damaged record").isEmpty, "the consumer did not log the damaged record: \(consumer.errorText)")
        let report = WorkerLines(consumer.lines)
        outcome.check(!report.processed.contains(Self.flipped), "the record with the flipped byte was delivered")
        outcome.counters = Counters(publications: publications, processed: report.processed, bad: report.bad, documentedSkips: [Self.flipped])
        outcome.notes.append("record \(Self.flipped) skipped and logged as damaged (its documented outcome, not counted as lost); torn tail truncated by the next writer, which appended after it")
    }

    /// Flips a byte inside the payload of the record of ``flipped`` (`{"n":50}` becomes
    /// `{"n":40}`, which only the checksum can tell) and appends garbage to the newest segment.
    private static func damage(_ keyDirectory: String) throws -> String {
        let segments = try FileManager.default.contentsOfDirectory(atPath: keyDirectory)
            .filter { $0.hasSuffix(".seg") && !$0.hasPrefix(".") }.sorted().map { keyDirectory + "/" + $0 }
        guard let newest = segments.last else { throw HarnessError("no segment in \(keyDirectory)") }
        let needle = Array(#"{"n":\#(flipped)}"#.utf8)
        var flippedIn: String?
        for segment in segments {
            var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: segment)))
            guard let offset = bytes.indices.first(where: { bytes[$0...].starts(with: needle) }) else { continue }
            bytes[offset + 5] ^= 0x01
            try Data(bytes).write(to: URL(fileURLWithPath: segment))
            flippedIn = "\(segment) at byte \(offset + 5)"
            break
        }
        guard let flippedIn else { throw HarnessError("the record of \(flipped) is not in \(segments)") }
        let garbage = Data(String(repeating: "this is not a record; ", count: 10).utf8)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: newest))
        try handle.seekToEnd()
        try handle.write(contentsOf: garbage)
        try handle.close()
        return "flipped a byte in \(flippedIn); appended \(garbage.count) bytes of garbage to \(newest)"
    }
}

/// Scenario 5, configuration: malformed `REDIS_URL`s, keys and group names that break the rules.
/// Each must fail with its documented error code and a message naming the variable or the rule —
/// in this process through the loader and the initialisers, and once in a worker process, which
/// must exit with the error on standard error.
struct BadConfiguration {
    func run(_ fleet: Fleet, _ outcome: inout Outcome) async throws {
        let urls = [
            ("redis://:6379/0", "has no host"),
            ("redis://127.0.0.1:99999/0", "port out of range"),
            ("redis://127.0.0.1:63x9/0", "port that is not a number"),
            ("redis://127.0.0.1:6379/first", "not a whole number"),
            ("redis://127.0.0.1:6379/-1", "negative"),
            ("http://127.0.0.1:6379/0", "unknown scheme"),
        ]
        for (url, problem) in urls {
            expect(.invalidConfiguration, naming: ["REDIS_URL", problem], &outcome) {
                _ = try loadBackend(providers: [RedisBackend.provider], environment: ["QUEUE_BACKEND": "redis", "REDIS_URL": url])
            }
        }
        let keys = [("", "empty"), (String(repeating: "k", count: 513), "the limit is 512"), ("nul\u{0}key", "control character"), ("new\nline", "control character")]
        for (key, rule) in keys {
            expect(.invalidKey, naming: [rule], &outcome) { _ = try MessageQueueKey(key) }
        }
        let groups = [("", "empty"), (String(repeating: "g", count: 256), "the limit is 255"), ("tab\tgroup", "control character")]
        for (group, rule) in groups {
            expect(.invalidGroup, naming: [rule], &outcome) { _ = try ConsumerGroup(group) }
        }

        fleet.environment = ["QUEUE_BACKEND": "redis", "REDIS_URL": "http://127.0.0.1:6379/0"]
        let worker = try fleet.consumer(key: "chaos-bad", group: "chaos", concurrency: 1, holdMilliseconds: 0)
        let end = await worker.waitForExit()
        outcome.check(end == .exited(1) && worker.errorText.contains("REDIS_URL") && worker.errorText.contains("unknown scheme"), "a worker with a malformed REDIS_URL did not exit with a clear error: \(worker.summary)")
        let badKey = try fleet.start(Fleet.consumerWorker, ["new\nline", "chaos"])
        let keyEnd = await badKey.waitForExit()
        outcome.check(keyEnd == .exited(2) && badKey.errorText.contains("invalid-key"), "a worker given an invalid key did not exit with a clear error: \(badKey.summary)")
        outcome.notes.append("\(urls.count) malformed REDIS_URLs, \(keys.count) invalid keys, \(groups.count) invalid groups: each refused with its code and a message naming the problem; in a worker process too (exit 1 and 2)")
    }

    private func expect(_ code: MessageQueueError.Code, naming words: [String], _ outcome: inout Outcome, _ body: () throws -> Void) {
        do {
            try body()
            outcome.failures.append("accepted, instead of failing with \(code) naming \(words)")
        } catch let error as MessageQueueError {
            outcome.check(error.code == code && words.allSatisfy { error.message.contains($0) }, "failed with \(error), instead of \(code) naming \(words)")
        } catch {
            outcome.failures.append("failed with \(error), instead of \(code) naming \(words)")
        }
    }
}
