import func Foundation.pow

/// How long ``MessageConsumer`` waits before a failed message is delivered again.
///
/// The delay after the *n*-th failed delivery is `initialDelay × multiplier^(n-1)`, capped at
/// `maxDelay`, then spread by up to `±jitter` of itself so that messages that failed together do
/// not all come back in the same instant:
///
/// | delivery | `.default` delay (before jitter) |
/// |---|---|
/// | 1 | 1 s |
/// | 2 | 2 s |
/// | 3 | 4 s |
/// | 10 | 5 min (the cap) |
///
/// How many deliveries a message gets before it moves to the dead-letter key is the provider's
/// setting (`maxDeliveries`, default 5), because the provider also counts deliveries that ended in
/// a visibility timeout or a crashed consumer, which the runner never sees.
///
/// A handler can override the policy for one message by throwing ``RetryAfter``.
public struct RetryPolicy: Sendable, Hashable {
    /// The delay after the first failed delivery.
    public var initialDelay: Duration
    /// The factor between the delays of consecutive failures; `1` keeps the delay constant.
    public var multiplier: Double
    /// The longest delay the policy ever returns, jitter included.
    public var maxDelay: Duration
    /// The fraction, from 0 to 1, by which each delay is randomly lengthened or shortened.
    public var jitter: Double

    /// Creates a policy. Out-of-range values are clamped: negative delays to zero, `multiplier`
    /// to at least 1, `jitter` to 0…1, `maxDelay` to at least `initialDelay`.
    public init(
        initialDelay: Duration = .seconds(1),
        multiplier: Double = 2,
        maxDelay: Duration = .seconds(300),
        jitter: Double = 0.2
    ) {
        self.initialDelay = max(initialDelay, .zero)
        self.multiplier = multiplier.isFinite ? max(multiplier, 1) : 1
        self.maxDelay = max(maxDelay, self.initialDelay)
        self.jitter = jitter.isFinite ? min(max(jitter, 0), 1) : 0
    }

    /// 1 s, doubling, at most 5 minutes, ±20 % jitter.
    public static let `default` = RetryPolicy()

    /// Redelivers at once; for tests and for handlers whose failures are never transient.
    public static let immediate = RetryPolicy(initialDelay: .zero, multiplier: 1, maxDelay: .zero, jitter: 0)

    /// The delay before redelivering a message whose delivery number `deliveryCount` failed.
    ///
    /// - Parameter deliveryCount: ``MessageQueueMessage/deliveryCount`` of the failed delivery
    ///   (1 for the first); values below 1 count as 1.
    public func delay(afterDelivery deliveryCount: Int) -> Duration {
        delay(afterDelivery: deliveryCount, random: Double.random(in: -1...1))
    }

    /// ``delay(afterDelivery:)`` with the random draw in `-1…1` given, so the bounds can be checked.
    func delay(afterDelivery deliveryCount: Int, random: Double) -> Duration {
        let initial = initialDelay.secondsValue
        let cap = maxDelay.secondsValue
        let exponent = Double(max(deliveryCount, 1) - 1)
        // pow overflows to +inf for large exponents; the cap takes over long before that matters.
        let base = min(initial * pow(multiplier, exponent), cap)
        let jittered = base * (1 + jitter * min(max(random, -1), 1))
        // Whole microseconds: exact enough for a retry, and free of binary-fraction noise.
        return .microseconds(Int64((min(max(jittered, 0), cap) * 1e6).rounded()))
    }
}

/// Thrown by a ``MessageConsumer`` handler to have its message delivered again after `delay`,
/// whatever the consumer's ``RetryPolicy`` says.
///
/// ```swift
/// catch let error as RateLimited {
///     throw RetryAfter(error.resetIn, reason: "rate limited by the card service")
/// }
/// ```
///
/// The delivery still counts towards the provider's `maxDeliveries`.
public struct RetryAfter: Error, Sendable, CustomStringConvertible {
    /// How long to wait before the message is delivered again.
    public var delay: Duration
    /// Why the message is retried; recorded with the message and in its dead letter.
    public var reason: String

    /// Asks for a redelivery after `delay`, with `reason` recorded as the failure.
    public init(_ delay: Duration, reason: String) {
        self.delay = max(delay, .zero)
        self.reason = reason
    }

    public var description: String { "retry after \(delay.formatted): \(reason)" }
}
