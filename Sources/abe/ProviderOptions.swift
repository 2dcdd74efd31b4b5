import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendRedis
import ArgumentParser
import Logging

import class Foundation.ProcessInfo

/// `--backend`, `--spool-dir` and `--redis-url`: the flags of every command that opens a provider.
///
/// They override the environment by editing the dictionary handed to the loader, so a provider is
/// chosen and configured exactly as an application with the same variables would be.
struct ProviderOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The provider: memory, file-spool or redis. Overrides QUEUE_BACKEND.", valueName: "name"))
    var backend: String?

    @Option(name: .long, help: ArgumentHelp("The file spool's directory. Overrides ABE_SPOOL_DIR and selects the file spool unless --backend names another provider.", valueName: "path"))
    var spoolDir: String?

    @Option(
        name: .customLong("redis-url"),
        help: ArgumentHelp(
            "The Redis server, redis://[user[:password]@]host[:port][/db]. Overrides REDIS_URL and selects Redis unless --backend names another provider. Other users can read command lines: put a password in REDIS_URL or REDIS_PASSWORD instead.",
            valueName: "url"
        )
    )
    var redisURL: String?

    func validate() throws {
        if backend?.isEmpty == true { throw ValidationError("--backend is empty; use memory, file-spool or redis") }
        if spoolDir?.isEmpty == true { throw ValidationError("--spool-dir is empty; give the spool's directory") }
        if redisURL?.isEmpty == true { throw ValidationError("--redis-url is empty; give a redis:// URL") }
        if backend == nil, spoolDir != nil, redisURL != nil {
            throw ValidationError("--spool-dir and --redis-url select different providers; add --backend to say which one to use")
        }
    }

    /// The flag that chose the provider, if one did: what `abe doctor` gives as the reason.
    var selectingFlag: String? {
        if let backend { return "--backend \(backend)" }
        if spoolDir != nil { return "--spool-dir" }
        if redisURL != nil { return "--redis-url" }
        return nil
    }

    /// The process environment with the flags applied: what the loader reads.
    var environment: [String: String] {
        var environment = ProcessInfo.processInfo.environment
        if let spoolDir { environment[FileSpoolConfiguration.Variable.directory] = spoolDir }
        if let redisURL { environment[RedisConfiguration.Variable.url] = redisURL }
        if let backend {
            environment[queueBackendVariable] = backend
        } else if spoolDir != nil {
            environment[queueBackendVariable] = FileSpoolBackend.providerName
        } else if redisURL != nil {
            environment[queueBackendVariable] = RedisBackend.providerName
        }
        return environment
    }

    /// Creates the backend the flags and the environment select, through the applications' loader.
    ///
    /// On a thread of its own: a provider's initializer may touch the disk (the file spool
    /// creates and syncs its directory).
    func makeBackend() async throws -> any MessageQueueBackend {
        var logger = Logger(label: "abe.loader")
        // The loader's warnings (the in-memory fallback, a deprecated provider) are for the user.
        logger.logLevel = .warning
        let environment = self.environment
        let thread = OwnedThread(name: "abe-open")
        defer { thread.stop() }
        return try await thread.run { [logger] in
            Result { try loadBackend(providers: Providers.linked, environment: environment, logger: logger) }
        }.get()
    }
}
