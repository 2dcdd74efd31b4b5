import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendRedis
import ArgumentParser

struct DoctorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Show which provider is selected and why, the variables it reads, and check that it works.",
        discussion: """
            Lists the provider the environment (and --backend, --spool-dir, --redis-url) selects \
            and the reason, every variable the provider reads with its value (passwords shown as \
            ***), and variables of other providers that are set but unused. Then it checks the \
            provider live. Redis: connects, sends PING, reads the server version, the persistence \
            settings (appendonly, save; CONFIG GET may be refused, then INFO is used) and \
            maxmemory-policy. File spool: the directory's type, owner and mode as the provider \
            checks them, a test write, free disk space and the fsync policy. Nothing is created: \
            a missing spool directory is only checked for whether it can be created.

            Warnings (no persistence, little disk space) leave the exit status 0; a failed check \
            exits with 3 (configuration) or 4 (unavailable) and says what to fix.
            """
    )

    @OptionGroup var provider: ProviderOptions

    func run() async throws {
        let environment = provider.environment
        var output = DoctorOutput()
        let selection: (provider: MessageQueueProvider, reason: String)
        do {
            selection = try selectProvider(providers: Providers.linked, environment: environment)
        } catch {
            output.variable(queueBackendVariable, in: environment, isSecret: false, note: provider.selectingFlag.map { "from \($0)" })
            throw error
        }
        let selected = selection.provider
        output.line("provider  \(selected.name): \(provider.selectingFlag.map { "chosen by \($0)" } ?? selection.reason)")
        output.line("          \(selected.summary)")
        if let deprecation = selected.deprecation {
            output.warn("deprecated: move to the \(deprecation.replacement) provider. \(deprecation.message)")
        }

        output.line("")
        output.line("variables")
        output.variable(queueBackendVariable, in: environment, isSecret: false, note: provider.selectingFlag.map { "from \($0)" })
        var shown: Set<String> = [queueBackendVariable]
        for variable in selected.environmentVariables where shown.insert(variable.name).inserted {
            output.variable(variable.name, in: environment, isSecret: variable.isSecret, note: flagNote(variable.name))
        }
        for other in Providers.linked where other.name != selected.name {
            for variable in other.environmentVariables where environment[variable.name] != nil && shown.insert(variable.name).inserted {
                output.variable(variable.name, in: environment, isSecret: variable.isSecret, note: "not used: \(selected.name) is selected")
            }
        }

        output.line("")
        output.line("checks")
        switch selected.name {
        case FileSpoolBackend.providerName:
            try await SpoolDoctor.check(environment, output: &output)
        case RedisBackend.providerName:
            try await RedisDoctor.check(environment, output: &output)
        default:
            // The provider is built the way an application would build it, which validates its variables.
            let backend = try await output.checked("configuration") { try selected.makeBackend(environment) }
            await backend.close()
            output.ok("configuration: the \(selected.name) provider starts with these variables")
            if selected.isDevelopmentFallback {
                output.warn("\(selected.name) keeps messages in this process only; they are lost when it ends (development only)")
            }
        }
        output.line(output.warnings == 0 ? "doctor: ok" : "doctor: ok, \(output.warnings) warning\(output.warnings == 1 ? "" : "s") above")
    }

    private func flagNote(_ name: String) -> String? {
        if name == FileSpoolConfiguration.Variable.directory, provider.spoolDir != nil { return "from --spool-dir" }
        if name == RedisConfiguration.Variable.url, provider.redisURL != nil { return "from --redis-url" }
        return nil
    }
}

/// The report `abe doctor` prints on standard output as it goes, so a check that hangs or fails
/// is seen after everything before it.
struct DoctorOutput {
    private(set) var warnings = 0

    func line(_ text: String) {
        Terminal.writeOutput(text + "\n")
    }

    func ok(_ text: String) {
        line("  ok    " + text)
    }

    mutating func warn(_ text: String) {
        warnings += 1
        line("  warn  " + text)
    }

    /// Runs `body`; when it throws, prints a FAIL line for `check` and rethrows, so the error's
    /// message (on standard error) says what to fix.
    func checked<Result>(_ check: String, _ body: () async throws -> Result) async throws -> Result {
        do {
            return try await body()
        } catch {
            line("  FAIL  " + check)
            throw error
        }
    }

    /// `  NAME  value`, with secrets redacted: a URL keeps everything but its password, any
    /// other secret is shown as `***`.
    func variable(_ name: String, in environment: [String: String], isSecret: Bool, note: String?) {
        var shown = "(unset)"
        if let value = environment[name] {
            if !isSecret {
                shown = value.debugDescription
            } else if value.contains("://") {
                shown = RedisConfiguration.redactedURL(value).debugDescription
            } else {
                shown = "***"
            }
        }
        let padding = String(repeating: " ", count: max(1, 30 - name.count))
        line("  \(name)\(padding)\(shown)" + (note.map { "  (\($0))" } ?? ""))
    }
}
