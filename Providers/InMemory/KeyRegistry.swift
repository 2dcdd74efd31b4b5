import AbstractBackend
import Logging
import Synchronization

/// Every key of one in-memory backend, and the consumers that read all keys.
final class KeyRegistry: Sendable {
    private struct State {
        var logs: [MessageQueueKey: KeyLog] = [:]
        /// Keys in creation order, for consumers that read every key.
        var ordered: [KeyLog] = []
        /// Consumers of every key, woken when a key is created.
        var watchers: [ObjectIdentifier: WakeSignal] = [:]
        /// The last key looked up, so a publisher that keeps using one key skips the hashing.
        var recent: KeyLog?
        var isClosed = false
    }

    let configuration: InMemoryBackend.Configuration
    let logger: Logger
    let metrics = MessageQueueMetrics(provider: InMemoryBackend.providerName)
    private let state = Mutex(State())
    /// Bumped whenever a key is created, so consumers of every key notice without locking.
    private let keyGeneration = Atomic<Int>(0)

    init(configuration: InMemoryBackend.Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    var generation: Int { keyGeneration.load(ordering: .acquiring) }

    /// The log of `key`, created on first use. Throws once the backend is closed.
    func log(for key: MessageQueueKey) throws(MessageQueueError) -> KeyLog {
        let (log, watchers) = state.withLock { state -> (KeyLog?, [WakeSignal]) in
            guard !state.isClosed else { return (nil, []) }
            if let recent = state.recent, recent.key == key { return (recent, []) }
            if let log = state.logs[key] {
                state.recent = log
                return (log, [])
            }
            let log = KeyLog(key: key, settings: configuration, registry: self)
            state.logs[key] = log
            state.ordered.append(log)
            keyGeneration.add(1, ordering: .releasing)
            return (log, key.isDeadLetter ? [] : Array(state.watchers.values))
        }
        guard let log else { throw MessageQueueError.closed(InMemoryBackend.providerName) }
        for watcher in watchers { watcher.notify() }
        return log
    }

    /// Every key except dead-letter keys, in creation order, and the generation they belong to.
    func consumableKeys() -> (logs: [KeyLog], generation: Int) {
        state.withLock { state in
            (state.ordered.filter { !$0.key.isDeadLetter }, keyGeneration.load(ordering: .relaxed))
        }
    }

    func watch(_ signal: WakeSignal) {
        state.withLock { $0.watchers[ObjectIdentifier(signal)] = signal }
    }

    func unwatch(_ signal: WakeSignal) {
        state.withLock { $0.watchers[ObjectIdentifier(signal)] = nil }
    }

    var isClosed: Bool { state.withLock(\.isClosed) }

    /// Every key's log, dead-letter keys included, in creation order: for statistics.
    var allLogs: [KeyLog] { state.withLock(\.ordered) }

    /// Appends dead letters to `key`'s dead-letter key.
    func deadLetter(_ letters: [DeadLetter], from key: MessageQueueKey) {
        for letter in letters {
            logger.warning(
                "message moved to the dead-letter key",
                metadata: [
                    "key": "\(key)", "group": "\(letter.group)", "message-id": "\(letter.id)",
                    "delivery-count": "\(letter.deliveryCount)", "dead-letter-key": "\(key.deadLetterKey)",
                ]
            )
        }
        do {
            try log(for: key.deadLetterKey).appendDeadLetters(letters.map(\.envelope))
        } catch {
            logger.error(
                "dead letters dropped because the backend closed while writing them",
                metadata: ["key": "\(key)", "count": "\(letters.count)"]
            )
        }
    }

    func close() {
        let (logs, watchers) = state.withLock { state -> ([KeyLog], [WakeSignal]) in
            guard !state.isClosed else { return ([], []) }
            state.isClosed = true
            defer { state = State(isClosed: true) }
            return (state.ordered, Array(state.watchers.values))
        }
        for log in logs { log.close() }
        for watcher in watchers { watcher.notify() }
    }
}
