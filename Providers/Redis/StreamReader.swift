import AbstractBackend
import CHiredis
import Synchronization

/// The entries one stream returned to `XREADGROUP` or `XAUTOCLAIM`.
struct StreamBatch: Sendable {
    var stream: String
    var entries: [StreamEntry]
    /// `XAUTOCLAIM`'s cursor for the next scan, `0-0` when the scan is complete.
    var nextCursor: String?
}

/// Decodes `XREADGROUP` and `XAUTOCLAIM` replies on the connection thread — JSON included — so
/// the consuming task only wraps ready payloads into messages.
///
/// It is also the request's future: ``value()`` waits for the result, so a consumer can send a
/// read ahead and collect it later.
final class StreamReader: ReplyHandler, @unchecked Sendable {
    enum Kind { case readGroup, autoClaim }

    private let kind: Kind
    private let streams: [String]
    private var batches: [StreamBatch] = []
    private var errorReply: String?
    private var replyIndex = 0
    private let outcome = Mutex(Outcome.pending(nil))

    private enum Outcome {
        case pending(UnsafeContinuation<Result<[StreamBatch], StreamReadError>, Never>?)
        case done(Result<[StreamBatch], StreamReadError>)
    }

    /// `streams` names the stream of each `XAUTOCLAIM` reply in order; `XREADGROUP` replies name
    /// their streams themselves.
    init(kind: Kind, streams: [String]) {
        self.kind = kind
        self.streams = streams
    }

    /// The decoded batches, or why the request failed; waits until the replies are in.
    func value() async -> Result<[StreamBatch], StreamReadError> {
        await withUnsafeContinuation { continuation in
            let ready = outcome.withLock { outcome -> Result<[StreamBatch], StreamReadError>? in
                switch outcome {
                case .done(let result): return result
                case .pending: outcome = .pending(continuation); return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// Whether the replies are in.
    var isDone: Bool {
        outcome.withLock { if case .done = $0 { return true } else { return false } }
    }

    func receive(_ reply: UnsafePointer<redisReply>) {
        defer { replyIndex += 1 }
        let node = reply.pointee
        if node.type == REDIS_REPLY_ERROR {
            if errorReply == nil { errorReply = String(decoding: RedisValue.bytes(of: node), as: UTF8.self) }
            return
        }
        guard node.type == REDIS_REPLY_ARRAY else { return }
        switch kind {
        case .readGroup:
            // [[stream, [entry, …]], …]; a nil reply (timeout) has no elements.
            for index in 0..<node.elements {
                guard let pair = node.element[index], pair.pointee.type == REDIS_REPLY_ARRAY, pair.pointee.elements == 2,
                      let name = pair.pointee.element[0], let entries = pair.pointee.element[1]
                else { continue }
                let stream = String(decoding: RedisValue.bytes(of: name.pointee), as: UTF8.self)
                batches.append(StreamBatch(stream: stream, entries: Self.entries(entries), nextCursor: nil))
            }
        case .autoClaim:
            // [next cursor, [entry, …], [deleted id, …]]
            guard node.elements >= 2, replyIndex < streams.count,
                  let cursor = node.element[0], let entries = node.element[1]
            else { return }
            let next = String(decoding: RedisValue.bytes(of: cursor.pointee), as: UTF8.self)
            batches.append(StreamBatch(stream: streams[replyIndex], entries: Self.entries(entries), nextCursor: next))
        }
    }

    func finish(_ error: MessageQueueError?) {
        let result: Result<[StreamBatch], StreamReadError>
        if let error {
            result = .failure(.connection(error))
        } else if let errorReply {
            result = .failure(.reply(errorReply))
        } else {
            result = .success(batches)
        }
        let waiter = outcome.withLock { outcome -> UnsafeContinuation<Result<[StreamBatch], StreamReadError>, Never>? in
            defer { outcome = .done(result) }
            if case .pending(let waiter) = outcome { return waiter }
            return nil
        }
        waiter?.resume(returning: result)
    }

    private static func entries(_ list: UnsafeMutablePointer<redisReply>) -> [StreamEntry] {
        guard list.pointee.type == REDIS_REPLY_ARRAY else { return [] }
        var entries: [StreamEntry] = []
        entries.reserveCapacity(list.pointee.elements)
        for index in 0..<list.pointee.elements {
            if let element = list.pointee.element[index], let entry = StreamEntry(element) {
                entries.append(entry)
            }
        }
        return entries
    }
}

/// Why a stream read failed: the connection, or an error reply such as `NOGROUP`.
enum StreamReadError: Error {
    case connection(MessageQueueError)
    case reply(String)
}
