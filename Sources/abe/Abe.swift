import ArgumentParser
import Logging

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

@main
struct Abe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abe",
        abstract: "Abstract Backend: publish, consume, inspect and measure message queues from the command line.",
        discussion: """
            The provider is chosen as in applications: QUEUE_BACKEND names it (memory, file-spool, \
            redis); otherwise REDIS_URL selects Redis and ABE_SPOOL_DIR the file spool; with nothing \
            set it is the in-memory provider, whose messages end with the process. The flags \
            --backend, --spool-dir and --redis-url of publish, consume, stats, doctor and demo \
            override those variables. `abe doctor` shows what is selected and why.

            Exit status:
              0  success
              1  another failure: abe demo lost orders, an unexpected error
              2  usage: an unknown option, a missing or invalid argument
              3  configuration: QUEUE_BACKEND, REDIS_URL, spool directory, password
              4  unavailable: the Redis server or the spool cannot be used now
              5  data: input that is not a JSON object, stored data that fails
                 its check
            """,
        subcommands: [
            PublishCommand.self, ConsumeCommand.self, StatsCommand.self, DoctorCommand.self,
            BenchCommand.self, DemoCommand.self,
        ]
    )

    /// Runs the command and maps every error to one of the documented exit statuses (ArgumentParser
    /// alone would exit 64 on usage errors and 1 on everything else).
    static func main() async {
        // A write to a closed pipe or socket then fails with EPIPE where it happens: a reader of
        // our output that went away ends the command cleanly (see `PublishCommand`,
        // `ConsumeCommand`), and a provider socket closed mid-write reports an error instead of
        // killing the process.
        signal(SIGPIPE, SIG_IGN)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            // Providers log operational details; a command-line run shows only their errors.
            handler.logLevel = .error
            return handler
        }
        let status: Int32
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            status = ExitStatus.success.rawValue
        } catch {
            status = report(error)
        }
        terminate(status)
    }
}

/// `exit(3)`, under a name that `Abe.exit(withError:)` does not shadow.
private func terminate(_ status: Int32) -> Never {
    exit(status)
}
