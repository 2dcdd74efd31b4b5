import AbstractBackend
import ArgumentParser

/// The exit statuses of `abe`, documented in `abe --help` and docs/cli.md.
enum ExitStatus: Int32 {
    case success = 0
    /// Anything else: `abe demo` lost messages, or an unexpected error.
    case failure = 1
    /// The command line is wrong: an unknown option, a missing argument, an invalid key.
    case usage = 2
    /// The environment or the flags configure the provider wrongly (`QUEUE_BACKEND`, `REDIS_URL`,
    /// the spool directory, credentials).
    case configuration = 3
    /// The provider's server or storage cannot be reached or used right now.
    case unavailable = 4
    /// The data is wrong: input that is not a JSON object, a stored record that fails its check.
    case data = 5

    /// The status for an error of the provider layer.
    init(_ code: MessageQueueError.Code) {
        switch code {
        case .invalidConfiguration, .unknownProvider, .noProvider: self = .configuration
        case .unavailable, .timeout, .closed: self = .unavailable
        case .invalidPayload, .invalidKey, .invalidGroup, .dataCorrupted: self = .data
        default: self = .failure
        }
    }
}

/// An error `abe` reports itself: one or two lines saying what to fix, and the exit status.
struct CLIFailure: Error {
    let status: ExitStatus
    let message: String

    init(_ status: ExitStatus, _ message: String) {
        self.status = status
        self.message = message
    }
}

extension Abe {
    /// Prints `error` the way a person can act on — never a stack trace, never a credential
    /// (provider errors are written without them) — and returns the exit status.
    static func report(_ error: any Error) -> Int32 {
        switch error {
        case let failure as CLIFailure:
            Terminal.writeError("abe: \(failure.message)\n")
            return failure.status.rawValue
        case let failure as MessageQueueError:
            Terminal.writeError("abe: \(failure.message)\n")
            return ExitStatus(failure.code).rawValue
        case let exit as ExitCode:
            // Thrown after the command printed what went wrong.
            return exit.rawValue
        default:
            let code = exitCode(for: error)
            if code == .success {
                // --help and friends: ArgumentParser prints them and exits 0.
                self.exit(withError: error)
            }
            if code == .validationFailure {
                Terminal.writeError(fullMessage(for: error) + "\n")
                return ExitStatus.usage.rawValue
            }
            Terminal.writeError("abe: \(fullMessage(for: error))\n")
            return code.rawValue
        }
    }
}
