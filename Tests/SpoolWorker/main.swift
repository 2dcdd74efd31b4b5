// abe-spool-worker: a child process for the file-spool provider's multi-process and crash tests
// (Tests/AbstractBackendFileSpoolTests/MultiProcessTests.swift and CrashLoopTests.swift).
//
//   abe-spool-worker publish <spool-dir> <key> <first> <count> [--fsync always|interval|never]
//                            [--segment-bytes N] [--pad N] [--close yes|no]
//                            [--file-size-limit N]
//       Publishes {"n": i} for i in first..<first+count, one at a time, and after each publish
//       returns prints `acked <i>`. `--pad N` adds a member "pad" of N "x" characters, so that a
//       record spans many pages and a kill can land in the middle of its write. `--close no`
//       prints `exiting` and exits (status 0) without closing the backend. `--file-size-limit N` sets RLIMIT_FSIZE, so
//       writes past N bytes in a file fail (EFBIG). A failed publish prints
//       `failed <i> lost <statistics.lostMessages>` before exiting 1.
//
//   abe-spool-worker consume <spool-dir> <key> <group> <visibility-ms> [--hold-ms N] [--prefetch N]
//       Consumes <key> as a member of <group>; for each message prints `got <n> <deliveryCount> <id>`
//       (`bad <id> <payload>` for a payload `publish` cannot have written),
//       sleeps --hold-ms (default 0), then acknowledges it. `--prefetch` sets how many messages it
//       claims ahead (default 256). Runs until standard input is closed,
//       then closes the backend and exits 0.
//
// Both print `ready` once the spool is open. Every line is written with one write(2) straight to
// file descriptor 1 (no buffering), so a parent that kills the worker has seen every line the
// worker printed before it died. Exit codes: 0 done, 1 a spool error (on stderr), 2 bad arguments,
// 3 the parent went away.

import AbstractBackend
import AbstractBackendFileSpool
import Foundation
import TestSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

let usage = "usage: abe-spool-worker publish <spool-dir> <key> <first> <count> [--fsync always|interval|never] [--segment-bytes N] [--pad N] [--close yes|no] [--file-size-limit N]"
    + " | abe-spool-worker consume <spool-dir> <key> <group> <visibility-ms> [--hold-ms N] [--prefetch N]"
let worker = WorkerCommandLine(name: "abe-spool-worker", usage: usage)

func emit(_ text: String, to descriptor: Int32 = 1) { worker.emit(text, to: descriptor) }
func fail(_ message: String, code: Int32) -> Never { worker.fail(message, code: code) }
func badArguments(_ message: String) -> Never { worker.badArguments(message) }

/// `arguments` split by ``WorkerCommandLine/parse(_:allowed:)``, with exactly `positionalCount`
/// positionals.
func parse(_ arguments: ArraySlice<String>, positionalCount: Int, allowed: Set<String>) -> (positionals: [String], options: [String: String]) {
    let (positionals, options) = worker.parse(arguments, allowed: allowed)
    guard positionals.count == positionalCount else {
        badArguments("expected \(positionalCount) arguments after the command, got \(positionals.count)")
    }
    return (positionals, options)
}

func integer(_ text: String, _ name: String, minimum: Int) -> Int { worker.integer(text, name, minimum: minimum) }

func openBackend(_ configuration: FileSpoolConfiguration) -> FileSpoolBackend {
    do {
        return try FileSpoolBackend(configuration: configuration)
    } catch {
        fail("cannot open the spool: \(error.message)", code: 1)
    }
}

// MARK: publish

func publish(_ arguments: ArraySlice<String>) async -> Never {
    let (positionals, options) = parse(arguments, positionalCount: 4, allowed: ["--fsync", "--segment-bytes", "--pad", "--close", "--file-size-limit"])
    let key = worker.key(positionals[1])
    let first = integer(positionals[2], "<first>", minimum: Int(Int64.min))
    let count = integer(positionals[3], "<count>", minimum: 0)
    guard first.addingReportingOverflow(count).overflow == false else { badArguments("<first> + <count> overflows") }
    var configuration = FileSpoolConfiguration(directory: positionals[0])
    if let fsync = options["--fsync"] {
        guard let policy = FileSpoolConfiguration.FsyncPolicy(rawValue: fsync) else { badArguments("--fsync must be always, interval or never, not \(String(reflecting: fsync))") }
        configuration.fsync = policy
    }
    if let bytes = options["--segment-bytes"] {
        configuration.segmentSize = integer(bytes, "--segment-bytes", minimum: 1)
    }
    let pad = options["--pad"].map { integer($0, "--pad", minimum: 0) } ?? 0
    let padding = String(repeating: "x", count: pad)
    let closes = options["--close"] ?? "yes"
    guard closes == "yes" || closes == "no" else { badArguments("--close must be yes or no, not \(String(reflecting: closes))") }
    if let limit = options["--file-size-limit"].map({ integer($0, "--file-size-limit", minimum: 1) }) {
        // Without this the kernel ends the process (SIGXFSZ) instead of failing the write.
        signal(SIGXFSZ, SIG_IGN)
        var bound = rlimit(rlim_cur: rlim_t(limit), rlim_max: rlim_t(limit))
        guard setrlimit(Int32(RLIMIT_FSIZE.rawValue), &bound) == 0 else { fail("setrlimit(RLIMIT_FSIZE) failed: errno \(errno)", code: 1) }
    }
    let backend = openBackend(configuration)
    emit("ready")
    for n in first..<(first + count) {
        var payload: MessageQueuePayload = ["n": .int(Int64(n))]
        if pad > 0 { payload["pad"] = .string(padding) }
        do {
            try await backend.publish(payload, to: key)
        } catch {
            emit("failed \(n) lost \(backend.statistics.lostMessages)")
            fail("publish \(n) failed: \(error)", code: 1)
        }
        emit("acked \(n)")
    }
    if closes == "no" {
        emit("exiting")
        exit(0)
    }
    await backend.close()
    emit("done")
    exit(0)
}

// MARK: consume

/// `n` of a payload as `publish` writes it — `{"n": Int}`, or with a `pad` of only "x" — else `nil`.
func wellFormedNumber(_ payload: MessageQueuePayload) -> Int64? {
    guard let n = payload["n"]?.intValue else { return nil }
    switch payload.fields.count {
    case 1:
        return n
    case 2:
        guard let pad = payload["pad"]?.stringValue, pad.utf8.allSatisfy({ $0 == UInt8(ascii: "x") }) else { return nil }
        return n
    default:
        return nil
    }
}

func consume(_ arguments: ArraySlice<String>) async -> Never {
    let (positionals, options) = parse(arguments, positionalCount: 4, allowed: ["--hold-ms", "--prefetch"])
    let key = worker.key(positionals[1])
    let group: ConsumerGroup
    do {
        group = try ConsumerGroup(positionals[2])
    } catch {
        badArguments("invalid group: \(error.message)")
    }
    let visibility = integer(positionals[3], "<visibility-ms>", minimum: 1)
    let hold = options["--hold-ms"].map { integer($0, "--hold-ms", minimum: 0) } ?? 0
    var configuration = FileSpoolConfiguration(directory: positionals[0], visibilityTimeout: .milliseconds(visibility))
    if let prefetch = options["--prefetch"] {
        configuration.prefetch = integer(prefetch, "--prefetch", minimum: 1)
    }
    let backend = openBackend(configuration)

    let consuming = Task {
        for try await message in backend.consume(keys: [key], group: group) {
            if let n = wellFormedNumber(message.payload) {
                emit("got \(n) \(message.deliveryCount) \(message.id)")
            } else {
                emit("bad \(message.id) \(String(message.payload.description.prefix(200)))")
            }
            if hold > 0 { try await Task.sleep(for: .milliseconds(hold)) }
            try await message.ack()
        }
    }
    // The parent stops the worker gracefully by closing our standard input.
    worker.onEndOfInput { consuming.cancel() }
    emit("ready")

    let outcome = await consuming.result
    await backend.close()
    switch outcome {
    case .success:
        emit("done")
        exit(0)
    case .failure(let error) where error is CancellationError:
        emit("done")
        exit(0)
    case .failure(let error):
        fail("consuming failed: \(error)", code: 1)
    }
}

// MARK: main

worker.watchParent()
let arguments = CommandLine.arguments.dropFirst()
switch arguments.first {
case "publish":
    await publish(arguments.dropFirst())
case "consume":
    await consume(arguments.dropFirst())
case let other?:
    badArguments("unknown command \(String(reflecting: other))")
case nil:
    badArguments("no command")
}
