import Logging
import Synchronization
import class Foundation.ProcessInfo

/// The environment variable that names the provider to load.
public let queueBackendVariable = "QUEUE_BACKEND"

/// Picks and creates a backend from the environment, among the providers the program links.
///
/// Selection, in order:
/// 1. `QUEUE_BACKEND` names a provider: that one is loaded. A name that matches no linked provider
///    throws ``MessageQueueError/Code/unknownProvider`` listing the linked providers and, for a
///    known provider, the package product to add.
/// 2. Otherwise the first provider, in `providers` order, whose variables are set (for example
///    `REDIS_URL`), skipping development fallbacks.
/// 3. Otherwise the development fallback (the in-memory provider), with a warning that it is for
///    development only.
///
/// Loading a deprecated provider logs a warning naming its replacement, once per process.
///
/// ```swift
/// let backend = try loadBackend(providers: [RedisBackend.provider, InMemoryBackend.provider])
/// ```
public func loadBackend(
    providers: [MessageQueueProvider],
    environment: [String: String] = ProcessInfo.processInfo.environment,
    logger: Logger = Logger(label: "abe.loader")
) throws -> any MessageQueueBackend {
    let (provider, reason) = try selectProvider(providers: providers, environment: environment)
    if provider.isDevelopmentFallback && environment[queueBackendVariable] == nil {
        logger.warning(
            "no queue provider is configured; using the \(provider.name) provider, which is for development only and loses every message when the process ends",
            metadata: ["provider": "\(provider.name)", "hint": "set \(queueBackendVariable), REDIS_URL or ABE_SPOOL_DIR"]
        )
    }
    if let deprecation = provider.deprecation {
        DeprecationWarnings.warnOnce(provider: provider.name, deprecation: deprecation, logger: logger)
    }
    logger.debug("loading queue provider", metadata: ["provider": "\(provider.name)", "reason": "\(reason)"])
    return try provider.makeBackend(environment)
}

/// Returns the provider ``loadBackend(providers:environment:logger:)`` would load and why,
/// without creating it.
public func selectProvider(
    providers: [MessageQueueProvider],
    environment: [String: String]
) throws(MessageQueueError) -> (provider: MessageQueueProvider, reason: String) {
    if let raw = environment[queueBackendVariable] {
        let selection = raw.trimmingWhitespace()
        guard !selection.isEmpty else {
            throw MessageQueueError(.invalidConfiguration, "\(queueBackendVariable) is set but empty; set it to one of: \(names(providers)), or unset it")
        }
        if let provider = providers.first(where: { $0.matches(selection) }) {
            return (provider, "\(queueBackendVariable)=\(selection)")
        }
        throw unknownProvider(selection, linked: providers)
    }
    if let provider = providers.first(where: { !$0.isDevelopmentFallback && $0.isConfigured(environment) }) {
        let variables = provider.environmentVariables.map(\.name).filter { environment[$0] != nil }
        return (provider, "configured by \(variables.joined(separator: ", "))")
    }
    if let fallback = providers.first(where: \.isDevelopmentFallback) {
        return (fallback, "nothing else is configured")
    }
    if providers.isEmpty {
        throw MessageQueueError(.noProvider, "no providers were passed to loadBackend(providers:); add e.g. InMemoryBackend.provider (product AbstractBackendInMemory)")
    }
    let hints = providers.map { provider in
        "\(provider.name) (\(provider.environmentVariables.prefix(1).map(\.name).joined()))"
    }
    throw MessageQueueError(.noProvider, "no queue provider is configured; set \(queueBackendVariable) to one of: \(names(providers)), or configure one of: \(hints.joined(separator: ", "))")
}

private func names(_ providers: [MessageQueueProvider]) -> String {
    providers.isEmpty ? "(none linked)" : providers.map(\.name).joined(separator: ", ")
}

private func unknownProvider(_ selection: String, linked: [MessageQueueProvider]) -> MessageQueueError {
    let shown = NameValidation.quoted(selection)
    if let known = KnownProviders.all.first(where: { $0.matches(selection) }) {
        return MessageQueueError(
            .unknownProvider,
            "\(queueBackendVariable)=\(shown) selects the \(known.name) provider, which this program does not link; add the product \(known.product) to the target's dependencies and pass \(known.typeName).provider to loadBackend(providers:) (linked: \(names(linked)))"
        )
    }
    let catalog = KnownProviders.all.map { "\($0.name) (product \($0.product))" }.joined(separator: ", ")
    return MessageQueueError(
        .unknownProvider,
        "\(queueBackendVariable)=\(shown) names no provider; linked: \(names(linked)); available from this package: \(catalog)"
    )
}

/// The providers this package ships, so an error can name the product to add.
enum KnownProviders {
    struct Entry {
        let name: String
        let aliases: [String]
        let product: String
        let typeName: String

        func matches(_ selection: String) -> Bool {
            let wanted = selection.lowercased()
            return name == wanted || aliases.contains(wanted)
        }
    }

    static let all = [
        Entry(name: "memory", aliases: ["in-memory", "inmemory"], product: "AbstractBackendInMemory", typeName: "InMemoryBackend"),
        Entry(name: "file-spool", aliases: ["spool", "file"], product: "AbstractBackendFileSpool", typeName: "FileSpoolBackend"),
        Entry(name: "redis", aliases: ["redis-streams"], product: "AbstractBackendRedis", typeName: "RedisBackend"),
    ]
}

/// Remembers which deprecated providers were announced, so each warns once per process.
enum DeprecationWarnings {
    private static let announced = Mutex<Set<String>>([])

    static func warnOnce(provider: String, deprecation: Deprecation, logger: Logger) {
        let isFirst = announced.withLock { $0.insert(provider).inserted }
        guard isFirst else { return }
        logger.warning(
            "the \(provider) queue provider is deprecated; move to the \(deprecation.replacement) provider. \(deprecation.message)",
            metadata: ["provider": "\(provider)", "replacement": "\(deprecation.replacement)"]
        )
    }
}

extension String {
    func trimmingWhitespace() -> String { String(self[...].trimmingWhitespace()) }
}
