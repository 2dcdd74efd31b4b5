import Logging

/// Describes a provider to ``loadBackend(providers:environment:logger:)``.
///
/// Swift has no run-time plug-in discovery, so an application lists the providers it links and
/// the loader picks one from the environment. Each provider module offers one descriptor as a
/// static `provider` property, for example `InMemoryBackend.provider`.
public struct MessageQueueProvider: Sendable {
    /// The name `QUEUE_BACKEND` selects this provider by, such as `"redis"`.
    public var name: String
    /// Other names `QUEUE_BACKEND` accepts for this provider.
    public var aliases: [String]
    /// The SwiftPM product that contains the provider, such as `"AbstractBackendRedis"`.
    public var product: String
    /// One line saying what the provider is for.
    public var summary: String
    /// The environment variables the provider reads, for documentation and diagnostics.
    public var environmentVariables: [EnvironmentVariable]
    /// Whether this is a development fallback (the in-memory provider), chosen only when nothing
    /// else is configured, with a warning.
    public var isDevelopmentFallback: Bool
    /// Set when the provider is being retired; loading it logs a warning naming the replacement.
    public var deprecation: Deprecation?
    /// Whether `environment` configures this provider, for example because `REDIS_URL` is set.
    public var isConfigured: @Sendable (_ environment: [String: String]) -> Bool
    /// Creates the backend from `environment`, throwing an error that names a bad variable.
    public var makeBackend: @Sendable (_ environment: [String: String]) throws -> any MessageQueueBackend

    /// Creates a descriptor.
    public init(
        name: String,
        aliases: [String] = [],
        product: String,
        summary: String,
        environmentVariables: [EnvironmentVariable],
        isDevelopmentFallback: Bool = false,
        deprecation: Deprecation? = nil,
        isConfigured: @escaping @Sendable (_ environment: [String: String]) -> Bool,
        makeBackend: @escaping @Sendable (_ environment: [String: String]) throws -> any MessageQueueBackend
    ) {
        self.name = name
        self.aliases = aliases
        self.product = product
        self.summary = summary
        self.environmentVariables = environmentVariables
        self.isDevelopmentFallback = isDevelopmentFallback
        self.deprecation = deprecation
        self.isConfigured = isConfigured
        self.makeBackend = makeBackend
    }

    /// A descriptor for a backend type, configured when any of `configuringVariables` is set.
    public init<Backend: MessageQueueBackend>(
        _ backend: Backend.Type,
        aliases: [String] = [],
        product: String,
        summary: String,
        environmentVariables: [EnvironmentVariable],
        configuringVariables: [String],
        isDevelopmentFallback: Bool = false,
        deprecation: Deprecation? = nil
    ) {
        self.init(
            name: Backend.providerName,
            aliases: aliases,
            product: product,
            summary: summary,
            environmentVariables: environmentVariables,
            isDevelopmentFallback: isDevelopmentFallback,
            deprecation: deprecation,
            isConfigured: { environment in configuringVariables.contains { environment[$0] != nil } },
            makeBackend: { environment in try Backend.fromEnvironment(environment) }
        )
    }

    /// Whether `QUEUE_BACKEND`'s value `selection` names this provider (case-insensitive).
    public func matches(_ selection: String) -> Bool {
        let wanted = selection.lowercased()
        return name.lowercased() == wanted || aliases.contains { $0.lowercased() == wanted }
    }
}

/// An environment variable a provider reads.
public struct EnvironmentVariable: Sendable, Hashable {
    /// The variable's name, such as `REDIS_URL`.
    public var name: String
    /// What the variable means, its format and its default.
    public var summary: String
    /// Whether the value may hold a credential, so tools print it redacted.
    public var isSecret: Bool

    /// Creates a variable description.
    public init(_ name: String, _ summary: String, isSecret: Bool = false) {
        self.name = name
        self.summary = summary
        self.isSecret = isSecret
    }
}

/// A notice that a provider is being retired.
public struct Deprecation: Sendable, Hashable {
    /// The provider to move to, by its `QUEUE_BACKEND` name.
    public var replacement: String
    /// Why, and until when the provider is kept.
    public var message: String

    /// Creates a deprecation notice.
    public init(replacement: String, message: String) {
        self.replacement = replacement
        self.message = message
    }
}
