import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendRedis
import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish",
        abstract: "Publish a JSON object, or JSON lines from standard input, to a key.",
        discussion: """
            abe publish orders '{"order": 42}' publishes one message. abe publish orders - reads \
            standard input, one JSON object per line (blank lines are skipped), and publishes them \
            in batches of --batch-size as they arrive, so it also works at the end of a pipe that \
            stays open. A line that is not a JSON object stops the run with its line number (exit \
            status 5): the lines before it are published, none after it. With --skip-invalid such \
            lines are reported on standard error and the others published.

            --print-ids prints the id of each published message, one per line, in input order: \
            the Redis entry id, or the file spool's sequence number within the key. The in-memory \
            provider does not report ids (its messages end with this process anyway).
            """
    )

    @OptionGroup var provider: ProviderOptions

    @Argument(help: "The key to publish to.")
    var key: String

    @Argument(help: ArgumentHelp("The message, a JSON object such as '{\"order\": 42}', or - to read one JSON object per line from standard input.", valueName: "json"))
    var json: String

    @Flag(name: .customLong("print-ids"), help: "Print the id of each published message, one per line.")
    var printIDs = false

    @Flag(name: .long, help: "With -, report lines that are not a JSON object on standard error and publish the others, instead of stopping at the first one.")
    var skipInvalid = false

    @Option(name: .long, help: "With -, the most messages sent in one batch (1 to 10000).")
    var batchSize = 256

    func validate() throws {
        do {
            _ = try MessageQueueKey(key)
        } catch {
            throw ValidationError(error.message)
        }
        guard (1...10_000).contains(batchSize) else { throw ValidationError("--batch-size must be 1 to 10000") }
        if json != "-" && skipInvalid {
            throw ValidationError("--skip-invalid applies to JSON lines from standard input; give - as the message")
        }
    }

    func run() async throws {
        let key = try MessageQueueKey(key)
        let backend = try await provider.makeBackend()
        do {
            let publisher = try BatchPublisher(backend, printingIDs: printIDs)
            if json == "-" {
                try await publishLines(to: key, with: publisher)
            } else {
                let payload: MessageQueuePayload
                do {
                    payload = try MessageQueuePayload(jsonText: json)
                } catch {
                    throw CLIFailure(.data, "the message is not a JSON object: \(error.message); give one such as '{\"order\": 42}', or - to read JSON lines")
                }
                try await publisher.publish([(key, payload)])
            }
        } catch is OutputClosed {
            // Nobody reads the ids any more; what was published stays published.
        } catch {
            await backend.close()
            throw error
        }
        await backend.close()
    }

    /// Publishes standard input's JSON lines in batches; stops at the first invalid line unless
    /// `--skip-invalid`, after publishing the lines before it.
    private func publishLines(to key: MessageQueueKey, with publisher: BatchPublisher) async throws {
        var reader = LineReader()
        var batch: [(key: MessageQueueKey, payload: MessageQueuePayload)] = []
        var published = 0
        var skipped = 0

        func flush() async throws {
            guard !batch.isEmpty else { return }
            do {
                try await publisher.publish(batch)
            } catch let error as MessageQueueError {
                throw CLIFailure(ExitStatus(error.code), "\(error.message) (\(published) messages from earlier lines were published; this batch of \(batch.count) may be published in part)")
            }
            published += batch.count
            batch.removeAll(keepingCapacity: true)
        }

        while let lines = try await reader.next() {
            for line in lines where !line.bytes.allSatisfy(Self.isWhitespace) {
                do {
                    batch.append((key, try MessageQueuePayload(jsonBytes: line.bytes)))
                } catch {
                    if skipInvalid {
                        skipped += 1
                        Terminal.writeError("abe: line \(line.number) skipped: \(error.message)\n")
                        continue
                    }
                    try await flush()
                    throw CLIFailure(
                        .data,
                        "line \(line.number) of standard input is not a JSON object: \(error.message)\n"
                            + "abe: the \(published) messages before it were published, none after it; fix the line, or pass --skip-invalid"
                    )
                }
                if batch.count == batchSize { try await flush() }
            }
            // Whatever this chunk completed goes out now: the next read may wait a long time.
            try await flush()
        }
        if skipped > 0 {
            Terminal.writeError("abe: published \(published) message\(published == 1 ? "" : "s"); skipped \(skipped) line\(skipped == 1 ? "" : "s") that \(skipped == 1 ? "is not a JSON object" : "are not JSON objects")\n")
        }
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }
}

/// Publishes batches through the backend's `publish(_:)`, or, with `--print-ids`, through the
/// provider's path that returns ids — `MessageQueueBackend.publish` returns none — and prints them.
struct BatchPublisher {
    private let send: (_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws -> Void

    init(_ backend: any MessageQueueBackend, printingIDs: Bool) throws {
        guard printingIDs else {
            send = { batch in try await backend.publish(batch) }
            return
        }
        let publishReturningIDs: (_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws -> [String]
        switch backend {
        case let redis as RedisBackend:
            publishReturningIDs = { batch in try await redis.publishReturningIDs(batch) }
        case let spool as FileSpoolBackend:
            let publisher = SpoolIDPublisher(backend: spool)
            publishReturningIDs = { batch in try await publisher.publish(batch) }
        default:
            throw CLIFailure(
                .configuration,
                "--print-ids needs the file-spool or redis provider; the \(type(of: backend).providerName) provider does not report message ids"
            )
        }
        send = { batch in
            let ids = try await publishReturningIDs(batch)
            guard Terminal.writeOutput(ids.map { $0 + "\n" }.joined()) else {
                let code = errno
                // The reader went away (`abe publish k - --print-ids | head -n 1`): stop publishing.
                if code == EPIPE { throw OutputClosed() }
                throw CLIFailure(.failure, "cannot write the ids to standard output: \(String(cString: strerror(code))); the \(ids.count) messages of this batch were published")
            }
        }
    }

    func publish(_ batch: [(key: MessageQueueKey, payload: MessageQueuePayload)]) async throws {
        try await send(batch)
    }
}

/// The reader of standard output went away: the command stops, successfully.
struct OutputClosed: Error {}
