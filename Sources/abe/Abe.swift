import ArgumentParser

@main
struct Abe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "abe",
        abstract: "Abstract Backend: publish, consume and measure message queues from the command line.",
        discussion: """
            The provider is chosen from the environment, as in applications: QUEUE_BACKEND names it \
            (memory), otherwise the in-memory provider is used.
            """,
        subcommands: [BenchCommand.self, DemoCommand.self]
    )
}
