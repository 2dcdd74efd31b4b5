/// Reads typed values from environment variables, with errors that name the variable.
///
/// Providers use it in `fromEnvironment` so that every provider reports a bad value the same way:
///
/// ```swift
/// let reader = EnvironmentReader(environment)
/// let capacity = try reader.integer("ABE_MEMORY_CAPACITY", default: 65_536, in: 1...Int(Int32.max))
/// let timeout = try reader.duration("ABE_MEMORY_VISIBILITY_TIMEOUT", default: .seconds(30))
/// ```
public struct EnvironmentReader: Sendable {
    /// The variables being read.
    public let environment: [String: String]

    /// Creates a reader over `environment`.
    public init(_ environment: [String: String]) {
        self.environment = environment
    }

    /// The trimmed value of `name`, or `nil` when it is unset or blank.
    public func string(_ name: String) -> String? {
        guard let value = environment[name]?.trimmingWhitespace(), !value.isEmpty else { return nil }
        return value
    }

    /// A whole number in `range`, or `defaultValue` when `name` is unset.
    public func integer(_ name: String, default defaultValue: Int, in range: ClosedRange<Int>) throws(MessageQueueError) -> Int {
        guard let text = string(name) else { return defaultValue }
        guard let value = Int(text.replacingUnderscores()) else {
            throw invalid(name, text, "is not a whole number; use e.g. \(defaultValue)")
        }
        guard range.contains(value) else {
            throw invalid(name, text, "is out of range; use \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }

    /// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`), or `defaultValue` when `name` is unset.
    public func boolean(_ name: String, default defaultValue: Bool) throws(MessageQueueError) -> Bool {
        guard let text = string(name) else { return defaultValue }
        switch text.lowercased() {
        case "true", "1", "yes", "on": return true
        case "false", "0", "no", "off": return false
        default: throw invalid(name, text, "is not a Boolean; use true or false")
        }
    }

    /// A duration such as `30s`, `250ms`, `1.5s`, `2m` or a plain number of seconds, or
    /// `defaultValue` when `name` is unset. It must lie in `range`.
    public func duration(
        _ name: String,
        default defaultValue: Duration,
        in range: ClosedRange<Duration> = .zero ... .seconds(86_400 * 365)
    ) throws(MessageQueueError) -> Duration {
        guard let text = string(name) else { return defaultValue }
        guard let value = Self.parseDuration(text) else {
            throw invalid(name, text, "is not a duration; use e.g. 30s, 250ms, 2m or a number of seconds")
        }
        guard range.contains(value) else {
            throw invalid(name, text, "is out of range; use \(range.lowerBound.formatted) to \(range.upperBound.formatted)")
        }
        return value
    }

    /// One of `choices` (case-insensitive), or `defaultValue` when `name` is unset.
    public func choice(_ name: String, default defaultValue: String, from choices: [String]) throws(MessageQueueError) -> String {
        guard let text = string(name) else { return defaultValue }
        guard let match = choices.first(where: { $0.lowercased() == text.lowercased() }) else {
            throw invalid(name, text, "is not one of: \(choices.joined(separator: ", "))")
        }
        return match
    }

    /// An error naming `name`, its value and what is wrong with it.
    ///
    /// Pass `isSecret: true` for variables that may hold credentials; the value is then left out.
    public func invalid(_ name: String, _ value: String, _ problem: String, isSecret: Bool = false) -> MessageQueueError {
        let shown = isSecret ? "" : "=\(NameValidation.quoted(value))"
        return MessageQueueError(.invalidConfiguration, "\(name)\(shown) \(problem)")
    }

    static func parseDuration(_ text: String) -> Duration? {
        let lowered = text.lowercased().replacingUnderscores()
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(lowered)
        var scale = 1.0
        if let unit = units.first(where: { lowered.hasSuffix($0.suffix) }) {
            number = number.dropLast(unit.suffix.count)
            scale = unit.seconds
        }
        guard let value = Double(number.trimmingWhitespace()), value.isFinite, value >= 0 else { return nil }
        let nanoseconds = (value * scale * 1e9).rounded()
        guard nanoseconds < 1e18 else { return nil }
        return .nanoseconds(Int64(nanoseconds))
    }
}

extension Substring {
    func trimmingWhitespace() -> Substring {
        var result = self
        while let first = result.first, first.isWhitespace { result.removeFirst() }
        while let last = result.last, last.isWhitespace { result.removeLast() }
        return result
    }
}

extension String {
    fileprivate func replacingUnderscores() -> String {
        contains("_") ? String(filter { $0 != "_" }) : self
    }
}
