import AbstractBackend

/// The provider's errors, worded for the person who has to fix them. They name the server by
/// ``RedisConfiguration/Endpoint`` only: never the URL, which may hold a password.
enum RedisErrors {
    static func unreachable(_ configuration: RedisConfiguration, reason: String) -> MessageQueueError {
        MessageQueueError(
            .unavailable,
            "cannot connect to Redis at \(configuration.endpoint) (\(reason)); check that the server runs and that REDIS_URL names it"
        )
    }

    static func connectionLost(_ configuration: RedisConfiguration, reason: String) -> MessageQueueError {
        MessageQueueError(
            .unavailable,
            "lost the connection to Redis at \(configuration.endpoint) (\(reason)); the command may or may not have been applied, and the provider reconnects on the next call"
        )
    }

    static func timedOut(_ configuration: RedisConfiguration) -> MessageQueueError {
        MessageQueueError(
            .timeout,
            "Redis at \(configuration.endpoint) did not answer within \(configuration.socketTimeout) (ABE_REDIS_SOCKET_TIMEOUT); the command may or may not have been applied"
        )
    }

    /// The error for an error reply to `command` (its name only: arguments may be secret).
    static func reply(_ message: String, command: String, configuration: RedisConfiguration) -> MessageQueueError {
        let code = message.prefix { $0 != " " }
        switch code {
        case "WRONGPASS", "NOPERM":
            return MessageQueueError(
                .invalidConfiguration,
                "Redis at \(configuration.endpoint) rejected the credentials (\(message)); check the user and password in REDIS_URL or REDIS_PASSWORD"
            )
        case "NOAUTH":
            return MessageQueueError(
                .invalidConfiguration,
                "Redis at \(configuration.endpoint) requires a password (\(message)); set it in REDIS_URL (redis://:PASSWORD@host) or REDIS_PASSWORD"
            )
        case "ERR" where command == "AUTH":
            return MessageQueueError(
                .invalidConfiguration,
                "Redis at \(configuration.endpoint) refused AUTH (\(message)); remove the password from REDIS_URL and REDIS_PASSWORD if the server has none"
            )
        case "ERR" where command == "SELECT":
            return MessageQueueError(
                .invalidConfiguration,
                "Redis at \(configuration.endpoint) refused database \(configuration.database) (\(message)); fix the database number in REDIS_URL"
            )
        case "WRONGTYPE":
            return MessageQueueError(
                .invalidKey,
                "\(command) failed on Redis at \(configuration.endpoint): a key the provider uses holds another type of value (\(message)); use another key or ABE_REDIS_KEY_PREFIX"
            )
        case "OOM", "LOADING", "BUSY", "MASTERDOWN", "READONLY", "TRYAGAIN", "CLUSTERDOWN":
            return MessageQueueError(.unavailable, "Redis at \(configuration.endpoint) cannot serve \(command) now (\(message))")
        default:
            return MessageQueueError(.internalError, "Redis at \(configuration.endpoint) answered \(command) with an error: \(message)")
        }
    }
}
