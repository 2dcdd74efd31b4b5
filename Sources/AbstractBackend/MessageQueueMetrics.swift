import CoreMetrics
import Synchronization

/// The swift-metrics counters and timers every provider records, under the same names.
///
/// A provider keeps one instance, gets a ``Publishing`` per key and a ``Delivery`` per key and
/// group from it, and calls them on the hot path: with no metrics backend bootstrapped when the
/// instance is made, every key shares one no-op ``Publishing`` and ``Delivery`` (no lookup, no
/// lock), each call is one no-op method call, and the publish clock is not read at all.
///
/// | label | type | dimensions | counts |
/// |---|---|---|---|
/// | `abe_messages_published_total` | counter | provider, key | messages accepted by `publish` |
/// | `abe_publish_duration` | timer | provider, key | time from `publish` called to accepted (a batch: once per key in it) |
/// | `abe_messages_delivered_total` | counter | provider, key, group | deliveries handed to consumers, first or not |
/// | `abe_messages_redelivered_total` | counter | provider, key, group | deliveries with `deliveryCount > 1` |
/// | `abe_messages_acked_total` | counter | provider, key, group | successful `ack()` calls |
/// | `abe_messages_nacked_total` | counter | provider, key, group | successful `nack` calls, including ones that dead-lettered |
/// | `abe_messages_dead_lettered_total` | counter | provider, key, group | messages moved to `<key>:dead-letter` |
/// | `abe_handler_duration` | timer | provider, key, group, outcome | ``MessageConsumer`` handler runs; outcome `success` or `failure` |
///
/// Bootstrap the metrics backend (`MetricsSystem.bootstrap`) before creating a backend: like every
/// swift-metrics handle, these bind to the factory that is current when they are made.
public final class MessageQueueMetrics: Sendable {
    /// The provider dimension, such as `"redis"`.
    public let provider: String
    private let cache = Mutex(Cache())
    /// What every key gets when no metrics backend was bootstrapped at `init`: the lookup would
    /// cost a shared lock and a hash per publish, for handles that record nothing.
    private let disabled: (publishing: Publishing, delivery: Delivery)?

    private struct Cache {
        var publishing: [MessageQueueKey: Publishing] = [:]
        var delivery: [KeyAndGroup: Delivery] = [:]
    }

    private struct KeyAndGroup: Hashable {
        var key: MessageQueueKey
        var group: ConsumerGroup
    }

    /// Creates the metrics of one provider.
    public init(provider: String) {
        self.provider = provider
        disabled = MetricsSystem.factory is NOOPMetricsHandler ? (Publishing(dimensions: []), Delivery(dimensions: [])) : nil
    }

    /// The publishing metrics of `key`, made on first use and kept: look them up per call or
    /// keep them with the key's state.
    public func publishing(to key: MessageQueueKey) -> Publishing {
        if let disabled { return disabled.publishing }
        return cache.withLock { cache in
            if let existing = cache.publishing[key] { return existing }
            let made = Publishing(dimensions: [("provider", provider), ("key", key.rawValue)])
            cache.publishing[key] = made
            return made
        }
    }

    /// The delivery metrics of `key` in `group`, made on first use and kept.
    public func delivery(of key: MessageQueueKey, in group: ConsumerGroup) -> Delivery {
        if let disabled { return disabled.delivery }
        return cache.withLock { cache in
            let index = KeyAndGroup(key: key, group: group)
            if let existing = cache.delivery[index] { return existing }
            let made = Delivery(dimensions: [("provider", provider), ("key", key.rawValue), ("group", group.name)])
            cache.delivery[index] = made
            return made
        }
    }

    /// Records messages published to one key.
    public final class Publishing: Sendable {
        private let publishedCounter: Counter
        private let duration: Timer
        private let measuresDuration: Bool

        init(dimensions: [(String, String)]) {
            publishedCounter = Counter(label: "abe_messages_published_total", dimensions: dimensions)
            duration = Timer(label: "abe_publish_duration", dimensions: dimensions)
            measuresDuration = !(MetricsSystem.factory is NOOPMetricsHandler)
        }

        /// The instant to pass to ``published(_:startedAt:)``, or `nil` when no metrics backend
        /// is bootstrapped, so the clock is read only when someone records it.
        public func start() -> ContinuousClock.Instant? {
            measuresDuration ? .now : nil
        }

        /// Records `count` messages accepted by one publish call that began at `startedAt`.
        public func published(_ count: Int = 1, startedAt: ContinuousClock.Instant?) {
            publishedCounter.increment(by: count)
            if let startedAt {
                let elapsed = ContinuousClock.now - startedAt
                duration.recordNanoseconds(elapsed.wholeNanoseconds)
            }
        }
    }

    /// Records what happens to the deliveries of one key in one group.
    public final class Delivery: Sendable {
        private let deliveredCounter: Counter
        private let redeliveredCounter: Counter
        private let ackedCounter: Counter
        private let nackedCounter: Counter
        private let deadLetteredCounter: Counter

        init(dimensions: [(String, String)]) {
            deliveredCounter = Counter(label: "abe_messages_delivered_total", dimensions: dimensions)
            redeliveredCounter = Counter(label: "abe_messages_redelivered_total", dimensions: dimensions)
            ackedCounter = Counter(label: "abe_messages_acked_total", dimensions: dimensions)
            nackedCounter = Counter(label: "abe_messages_nacked_total", dimensions: dimensions)
            deadLetteredCounter = Counter(label: "abe_messages_dead_lettered_total", dimensions: dimensions)
        }

        /// Records one delivery with the given ``MessageQueueMessage/deliveryCount``.
        public func delivered(deliveryCount: Int) {
            deliveredCounter.increment()
            if deliveryCount > 1 { redeliveredCounter.increment() }
        }

        /// Records `count` successful acknowledgements.
        public func acknowledged(_ count: Int = 1) {
            ackedCounter.increment(by: count)
        }

        /// Records one `nack`.
        public func rejected() {
            nackedCounter.increment()
        }

        /// Records one message moved to the dead-letter key.
        public func deadLettered() {
            deadLetteredCounter.increment()
        }
    }
}
