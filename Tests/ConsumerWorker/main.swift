// abe-consumer-worker: a child process for the consumer kill tests
// (Tests/ConsumerKillTests/ConsumerKillTests.swift).
//
//   abe-consumer-worker <key> <group> [--concurrency N] [--hold-ms N]
//       Loads the provider the environment selects (QUEUE_BACKEND, ABE_SPOOL_DIR, REDIS_URL and
//       their variables, as any application does) and runs a MessageConsumer over <key> as a
//       member of <group> with N handlers at once (default 1). For a payload {"n": n} the handler
//       prints `start <n> <deliveryCount>`, sleeps --hold-ms (default 0), then prints
//       `handled <n>` and returns, after which the consumer acknowledges the message; a payload
//       without an integer `n` prints `bad <id>`. Runs until standard input is closed, then shuts
//       the consumer down, closes the backend, prints `done` and exits 0.
//
// Prints `ready` once the consumer runs. Every line is written with one write(2) straight to file
// descriptor 1 (no buffering), so a parent that kills the worker has seen every line the worker
// printed before it died; logs go to standard error. Exit codes: 0 done, 1 a backend or consumer
// error (on stderr), 2 bad arguments, 3 the parent went away.

import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis
import Foundation
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = "usage: abe-consumer-worker <key> <group> [--concurrency N] [--hold-ms N]"

/// Writes `text` to a file descriptor with as few write(2) calls as it takes (one for a line).
func emit(_ text: String, to descriptor: Int32 = 1) {
    var bytes = Array(text.utf8)
    if bytes.last != UInt8(ascii: "\n") { bytes.append(UInt8(ascii: "\n")) }
    var done = 0
    while done < bytes.count {
        let result = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress! + done, $0.count - done) }
        if result < 0 {
            if errno == EINTR { continue }
            // The reader is gone (the parent died or closed the pipe): nobody needs us any more.
            _exit(3)
        }
        done += result
    }
}

func fail(_ message: String, code: Int32) -> Never {
    emit("abe-consumer-worker: \(message)", to: 2)
    exit(code)
}

func badArguments(_ message: String) -> Never {
    fail("\(message); \(usage)", code: 2)
}

/// Exits when the parent process goes away, so that a crashed test never leaves workers behind.
func watchParent() {
    let parent = getppid()
    let thread = Thread {
        while getppid() == parent { usleep(100_000) }
        _exit(3)
    }
    thread.name = "parent-watch"
    thread.start()
}

/// Calls `body` on a thread of its own once standard input reaches its end: the parent's way of
/// asking for a graceful stop. A plain thread, because the read blocks.
func onEndOfInput(_ body: @escaping @Sendable () -> Void) {
    let thread = Thread {
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let result = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress!, $0.count) }
            if result > 0 { continue }
            if result < 0 && errno == EINTR { continue }
            break
        }
        body()
    }
    thread.name = "stdin-watch"
    thread.start()
}

struct Options {
    var key: MessageQueueKey
    var group: ConsumerGroup
    var concurrency = 1
    var hold = Duration.zero

    init(_ arguments: ArraySlice<String>) {
        var positionals: [String] = []
        var options: [String: Int] = [:]
        var index = arguments.startIndex
        while index < arguments.endIndex {
            let argument = arguments[index]
            guard argument.hasPrefix("--") else {
                positionals.append(argument)
                index += 1
                continue
            }
            guard ["--concurrency", "--hold-ms"].contains(argument) else { badArguments("unknown option \(argument)") }
            guard index + 1 < arguments.endIndex else { badArguments("\(argument) needs a value") }
            guard let value = Int(arguments[index + 1]), value >= 0 else {
                badArguments("\(argument) must be a whole number ≥ 0, not \(String(reflecting: arguments[index + 1]))")
            }
            options[argument] = value
            index += 2
        }
        guard positionals.count == 2 else { badArguments("expected <key> <group>, got \(positionals.count) arguments") }
        do {
            key = try MessageQueueKey(positionals[0])
            group = try ConsumerGroup(positionals[1])
        } catch {
            badArguments("\(error)")
        }
        if let concurrency = options["--concurrency"] { self.concurrency = concurrency }
        if let hold = options["--hold-ms"] { self.hold = .milliseconds(hold) }
    }
}

// MARK: main

// Standard output carries the lines the parent parses; logs must not interleave with them.
LoggingSystem.bootstrap(StreamLogHandler.standardError)
watchParent()
let options = Options(CommandLine.arguments.dropFirst())
let backend: any MessageQueueBackend
do {
    backend = try loadBackend(providers: [RedisBackend.provider, FileSpoolBackend.provider, InMemoryBackend.provider])
} catch {
    fail("cannot load the backend: \(error)", code: 1)
}
let hold = options.hold
let consumer: MessageConsumer
do {
    consumer = try MessageConsumer(backend: backend, group: options.group, keys: [options.key], concurrency: options.concurrency) { message in
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
onEndOfInput { consumer.shutdown() }
emit("ready")

let outcome = await running.result
await backend.close()
if case .failure(let error) = outcome {
    fail("consuming failed: \(error)", code: 1)
}
emit("done")
exit(0)
