import AbstractBackend
import CHiredis

/// One stream entry as read by `XREADGROUP` or `XAUTOCLAIM`, decoded on the connection thread.
struct StreamEntry: Sendable {
    /// What the entry's `data` field held.
    enum Body: Sendable {
        case payload(MessageQueuePayload)
        /// Not a payload: why, and the raw text (or a description of what was there).
        case invalid(reason: String, raw: String)
    }

    /// The entry id, `<milliseconds>-<sequence>`.
    let id: String
    let milliseconds: UInt64
    let sequence: UInt64
    let body: Body

    /// Decodes `[id, [field, value, …]]`. Returns `nil` for an entry that no longer exists
    /// (Redis returns its id with a nil field list when it was trimmed).
    init?(_ reply: UnsafePointer<redisReply>) {
        let node = reply.pointee
        guard node.type == REDIS_REPLY_ARRAY, node.elements == 2,
              let idReply = node.element[0], idReply.pointee.type == REDIS_REPLY_STRING
        else { return nil }
        let id = String(decoding: RedisValue.bytes(of: idReply.pointee), as: UTF8.self)
        guard let (milliseconds, sequence) = StreamEntry.parseID(id) else { return nil }
        guard let fields = node.element[1], fields.pointee.type == REDIS_REPLY_ARRAY else { return nil }
        self.id = id
        self.milliseconds = milliseconds
        self.sequence = sequence
        self.body = StreamEntry.decodeFields(fields.pointee)
    }

    /// Splits `<milliseconds>-<sequence>`.
    static func parseID(_ id: String) -> (UInt64, UInt64)? {
        guard let dash = id.utf8.firstIndex(of: UInt8(ascii: "-")),
              let milliseconds = UInt64(Substring(id.utf8[..<dash])),
              let sequence = UInt64(Substring(id.utf8[id.utf8.index(after: dash)...]))
        else { return nil }
        return (milliseconds, sequence)
    }

    /// The payload from the `data` field: the upstream provider's format, one field holding a
    /// JSON object. Anything else is described, not delivered.
    private static func decodeFields(_ fields: redisReply) -> Body {
        var index = 0
        var names: [String] = []
        while index + 1 < fields.elements {
            guard let name = fields.element[index], let value = fields.element[index + 1] else { break }
            let nameBytes = RedisValue.bytes(of: name.pointee)
            if nameBytes.elementsEqual("data".utf8) {
                guard let str = value.pointee.str else {
                    return .invalid(reason: "the data field is empty", raw: "")
                }
                let text = UnsafeRawBufferPointer(start: str, count: value.pointee.len)
                do {
                    return .payload(try MessageQueuePayload(jsonBytes: text))
                } catch {
                    return .invalid(reason: "the data field is not a JSON object: \(error.message)", raw: String(decoding: text, as: UTF8.self))
                }
            }
            names.append(String(decoding: nameBytes, as: UTF8.self))
            index += 2
        }
        let listed = names.isEmpty ? "no fields" : "fields " + names.map { "\"\($0)\"" }.joined(separator: ", ")
        return .invalid(reason: "the entry has no data field (it has \(listed))", raw: "")
    }
}
