// abe-consumer-worker: a child process for the consumer kill tests
// (Tests/ConsumerKillTests/ConsumerKillTests.swift) and the reliability harness (Tests/Chaos,
// Scripts/chaos). Both roles load the provider the environment selects (QUEUE_BACKEND,
// ABE_SPOOL_DIR, REDIS_URL and their variables, as any application does).
//
//   abe-consumer-worker <key> <group> [--concurrency N] [--hold-ms N]
//       Runs a MessageConsumer over <key> as a member of <group> with N handlers at once
//       (default 1). For a payload {"n": n} the handler prints `start <n> <deliveryCount>`, sleeps
//       --hold-ms (default 0), then prints `handled <n>` and returns, after which the consumer
//       acknowledges the message; a payload without an integer `n` prints `bad <id>`. Runs until
//       standard input is closed, then shuts the consumer down, closes the backend, prints `done`
//       and exits 0.
//
//   abe-consumer-worker publish <key> <first> <count> [--rate N]
//       Publishes {"n": i} for i in first..<first+count, one at a time, at most N per second
//       (default: as fast as it can), and prints `acked <i>` only after publish returned. A
//       publish that fails with `unavailable` or `timeout` (a provider outage) prints `retry <i>`
//       and is tried again after 100 ms, for up to 60 s; a retried publish may be stored twice.
//       Then closes the backend, prints `done` and exits 0.
//
// Prints `ready` once the consumer runs or the backend is loaded. Every line is written with one
// write(2) straight to file descriptor 1 (no buffering), so a parent that kills the worker has
// seen every line the worker printed before it died; logs go to standard error. Exit codes: 0
// done, 1 a backend or consumer error (on stderr), 2 bad arguments, 3 the parent went away.

import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis
import Foundation
import Logging
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = "usage: abe-consumer-worker <key> <group> [--concurrency N] [--hold-ms N]"
    + " | abe-consumer-worker publish <key> <first> <count> [--rate N]"
let worker = WorkerCommandLine(name: "abe-consumer-worker", usage: usage)

func emit(_ text: String, to descriptor: Int32 = 1) { worker.emit(text, to: descriptor) }
func fail(_ message: String, code: Int32) -> Never { worker.fail(message, code: code) }
func badArguments(_ message: String) -> Never { worker.badArguments(message) }

/// `arguments` split by ``WorkerCommandLine/parse(_:allowed:)``, every option a whole number ≥ 0.
func parse(_ arguments: ArraySlice<String>, allowed: Set<String>) -> (positionals: [String], options: [String: Int]) {
    let (positionals, options) = worker.parse(arguments, allowed: allowed)
    return (positionals, options.reduce(into: [:]) { numbers, option in numbers[option.key] = worker.integer(option.value, option.key, minimum: 0) })
}

func loadConfiguredBackend() -> any MessageQueueBackend {
    do {
        return try loadBackend(providers: [RedisBackend.provider, FileSpoolBackend.provider, InMemoryBackend.provider])
    } catch {
        fail("cannot load the backend: \(error)", code: 1)
    }
}

// MARK: consume

func consume(_ arguments: ArraySlice<String>) async -> Never {
    let (positionals, options) = parse(arguments, allowed: ["--concurrency", "--hold-ms"])
    guard positionals.count == 2 else { badArguments("expected <key> <group>, got \(positionals.count) arguments") }
    let key = worker.key(positionals[0])
    let group: ConsumerGroup
    do {
        group = try ConsumerGroup(positionals[1])
    } catch {
        badArguments("\(error)")
    }
    let hold = Duration.milliseconds(options["--hold-ms"] ?? 0)
    let backend = loadConfiguredBackend()
    let consumer: MessageConsumer
    do {
        consumer = try MessageConsumer(backend: backend, group: group, keys: [key], concurrency: options["--concurrency"] ?? 1) { message in
            guard let n = message.payload["n"]?.intValue else {
                emit("bad \(message.id)")
                return
            }
            emit("start \(n) \(message.deliveryCount)")
            if hold > .zero { try await Task.sleep(for: hold) }
            emit("handled \(n)")
        }
    } catch {
        fail("cannot create the consumer: \(error)", code: 2)
    }
    let running = Task { try await consumer.run() }
    worker.onEndOfInput { consumer.shutdown() }
    emit("ready")

    let outcome = await running.result
    await backend.close()
    if case .failure(let error) = outcome {
        fail("consuming failed: \(error)", code: 1)
    }
    emit("done")
    exit(0)
}

// MARK: publish

/// How long one number is retried through a provider outage before the publisher gives up.
let retryLimit = Duration.seconds(60)

func publish(_ arguments: ArraySlice<String>) async -> Never {
    let (positionals, options) = parse(arguments, allowed: ["--rate"])
    guard positionals.count == 3 else { badArguments("expected publish <key> <first> <count>, got \(positionals.count) arguments after publish") }
    let key = worker.key(positionals[0])
    guard let first = Int(positionals[1]), let count = Int(positionals[2]), count >= 0, !first.addingReportingOverflow(count).overflow else {
        badArguments("<first> and <count> must be whole numbers, <count> ≥ 0, and their sum must not overflow")
    }
    let rate = options["--rate"]
    if rate == 0 { badArguments("--rate must be at least 1") }
    let backend = loadConfiguredBackend()
    emit("ready")
    let started = ContinuousClock.now
    for n in first..<(first + count) {
        if let rate {
            try? await Task.sleep(until: started + .microseconds((n - first) * 1_000_000 / rate), clock: .continuous)
        }
        let giveUpAt = ContinuousClock.now + retryLimit
        while true {
            do {
                try await backend.publish(["n": .int(Int64(n))], to: key)
                break
            } catch let error as MessageQueueError where [.unavailable, .timeout].contains(error.code) && ContinuousClock.now < giveUpAt {
                emit("retry \(n)")
                emit("abe-consumer-worker: publish \(n) failed; retrying: \(error)", to: 2)
                try? await Task.sleep(for: .milliseconds(100))
            } catch {
                fail("publish \(n) failed: \(error)", code: 1)
            }
        }
        emit("acked \(n)")
    }
    await backend.close()
    emit("done")
    exit(0)
}

// MARK: main

// Standard output carries the lines the parent parses; logs must not interleave with them.
LoggingSystem.bootstrap(StreamLogHandler.standardError)
worker.watchParent()
let arguments = CommandLine.arguments.dropFirst()
// `publish` with three more positionals is the publishing role; a consumer of a key named
// "publish" has only a group after it.
if arguments.first == "publish", parse(arguments.dropFirst(), allowed: ["--rate", "--concurrency", "--hold-ms"]).positionals.count == 3 {
    await publish(arguments.dropFirst())
} else {
    await consume(arguments)
}
