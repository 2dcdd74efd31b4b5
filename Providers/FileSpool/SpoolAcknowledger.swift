import AbstractBackend
import Foundation

/// Records `ack` and `nack` of one iterator's messages in the group's journal, on the iterator's
/// thread, and writes dead letters.
final class SpoolAcknowledger: MessageAcknowledger {
    private let backend: FileSpoolBackend
    private let files: ConsumerFiles
    private let thread: OwnedThread

    init(backend: FileSpoolBackend, files: ConsumerFiles, thread: OwnedThread) {
        self.backend = backend
        self.files = files
        self.thread = thread
    }

    /// The iterator and every message it handed out are gone: nothing can use the group's files
    /// any more. Stopping the thread earlier would make a late `ack` run on the caller's thread,
    /// at the same time as the thread's last jobs, on files that are not safe to share.
    deinit {
        thread.stop()
    }

    /// Appends `acknowledged` to the group's journal; returns once it is written.
    nonisolated(nonsending) func acknowledge(_ message: MessageQueueMessage) async throws {
        guard !backend.isClosed else { throw MessageQueueError.closed(FileSpoolBackend.providerName) }
        let files = self.files
        let (key, sequence) = (message.key, message.receipt.primary)
        try await thread.run { () throws(MessageQueueError) in try files.record([.acknowledged(sequence: sequence)], for: key) }
        backend.metrics.delivery(of: key, in: message.group).acknowledged()
    }

    /// Hands the delivery back (due again after `retryAfter`), or dead-letters it when it was the
    /// last allowed delivery. Does nothing when this member no longer holds the delivery.
    nonisolated(nonsending) func reject(_ message: MessageQueueMessage, retryAfter: Duration, reason: String?) async throws {
        guard !backend.isClosed else { throw MessageQueueError.closed(FileSpoolBackend.providerName) }
        let files = self.files
        let (key, sequence, count) = (message.key, message.receipt.primary, message.deliveryCount)
        let outcome = try await thread.run { () throws(MessageQueueError) in
            try files.reject(key: key, sequence: sequence, deliveryCount: count, retryAfter: retryAfter, reason: reason)
        }
        let metrics = backend.metrics.delivery(of: key, in: message.group)
        metrics.rejected()
        guard case .exhausted = outcome else { return }
        let letter = DeadLetter(
            key: key, group: message.group, id: message.id, deliveryCount: count, reason: .maxDeliveries,
            lastError: reason, publishedAt: message.publishedAt, payload: message.payload
        )
        try await backend.publish(letter.envelope, to: key.deadLetterKey)
        try await thread.run { () throws(MessageQueueError) in try files.record([.acknowledged(sequence: sequence)], for: key) }
        metrics.deadLettered()
        logDeadLetter(letter)
    }

    /// Writes the dead letter of a claimed message, then acknowledges it: the message leaves its
    /// group only once its dead letter is on disk.
    func deadLetter(_ claimed: ConsumerFiles.Claimed, reason: DeadLetter.Reason, lastError: String?, deliveries: Int, raw: String? = nil) async throws {
        let payload: MessageQueuePayload
        if let raw {
            payload = ["raw": .string(raw)]
        } else {
            payload = (try? MessageQueuePayload(jsonBytes: claimed.payload)) ?? ["raw": .string(String(decoding: claimed.payload, as: UTF8.self))]
        }
        let letter = DeadLetter(
            key: claimed.key, group: files.group, id: String(claimed.sequence), deliveryCount: deliveries, reason: reason,
            lastError: lastError, publishedAt: Date(timeIntervalSince1970: Double(claimed.publishedAtMilliseconds) / 1000), payload: payload
        )
        try await backend.publish(letter.envelope, to: claimed.key.deadLetterKey)
        let files = self.files
        let (key, sequence) = (claimed.key, claimed.sequence)
        try await thread.run { () throws(MessageQueueError) in try files.record([.acknowledged(sequence: sequence)], for: key) }
        backend.metrics.delivery(of: key, in: letter.group).deadLettered()
        logDeadLetter(letter)
    }

    private func logDeadLetter(_ letter: DeadLetter) {
        backend.logger.warning(
            "message moved to the dead-letter key",
            metadata: [
                "key": "\(letter.key)", "group": "\(letter.group)", "message-id": "\(letter.id)",
                "delivery-count": "\(letter.deliveryCount)", "reason": "\(letter.reason)",
            ]
        )
    }
}
