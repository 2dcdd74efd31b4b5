import AbstractBackend
import CHiredis

/// One stream entry as read by `XREADGROUP` or `XAUTOCLAIM`, copied out of the reply on the
/// connection thread. The JSON is parsed later, by the consuming task (``payload()``), so that
/// parsing one batch overlaps with the connection thread reading the next.
struct StreamEntry: Sendable {
    /// What the entry's fields held.
    enum Body: Sendable {
        /// The bytes of the `data` field.
        case data([UInt8])
        /// No `data` field: the field names there were.
        case noData(fields: [String])
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
              let idReply = node.element[0], idReply.pointee.type == REDIS_REPLY_STRING, let idBytes = idReply.pointee.str
        else { return nil }
        let idText = UnsafeRawBufferPointer(start: idBytes, count: idReply.pointee.len)
        guard let (milliseconds, sequence) = StreamEntry.parseID(idText) else { return nil }
        guard let fields = node.element[1], fields.pointee.type == REDIS_REPLY_ARRAY else { return nil }
        self.id = String(decoding: idText, as: UTF8.self)
        self.milliseconds = milliseconds
        self.sequence = sequence
        self.body = StreamEntry.decodeFields(fields.pointee)
    }

    /// Splits `<milliseconds>-<sequence>`.
    static func parseID(_ id: String) -> (UInt64, UInt64)? {
        var id = id
        return id.withUTF8 { parseID(UnsafeRawBufferPointer($0)) }
    }

    /// Splits `<milliseconds>-<sequence>` read straight from a reply: two runs of decimal
    /// digits, each fitting a `UInt64`, around one dash.
    static func parseID(_ text: UnsafeRawBufferPointer) -> (UInt64, UInt64)? {
        var milliseconds: UInt64?
        var value: UInt64 = 0
        var digits = 0
        for byte in text {
            if byte == UInt8(ascii: "-") {
                guard milliseconds == nil, digits > 0 else { return nil }
                milliseconds = value
                value = 0
                digits = 0
                continue
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = shifted.addingReportingOverflow(UInt64(byte &- UInt8(ascii: "0")))
            guard !overflowed, !carried else { return nil }
            value = sum
            digits += 1
        }
        guard let milliseconds, digits > 0 else { return nil }
        return (milliseconds, value)
    }

    /// The payload of the `data` field — the upstream provider's format, one field holding a
    /// JSON object — or why there is none: the reason and the raw text, for the dead letter.
    func payload() -> Result<MessageQueuePayload, InvalidEntry> {
        switch body {
        case .data(let bytes):
            do {
                return .success(try MessageQueuePayload(jsonBytes: bytes))
            } catch {
                return .failure(InvalidEntry(reason: "the data field is not a JSON object: \(error.message)", raw: String(decoding: bytes, as: UTF8.self)))
            }
        case .noData(let names):
            let listed = names.isEmpty ? "no fields" : "fields " + names.map { "\"\($0)\"" }.joined(separator: ", ")
            return .failure(InvalidEntry(reason: "the entry has no data field (it has \(listed))", raw: ""))
        }
    }

    private static let dataField = Array("data".utf8)

    private static func decodeFields(_ fields: redisReply) -> Body {
        var index = 0
        var names: [String] = []
        while index + 1 < fields.elements {
            guard let name = fields.element[index], let value = fields.element[index + 1] else { break }
            let nameBytes = UnsafeRawBufferPointer(start: name.pointee.str, count: name.pointee.len)
            if nameBytes.elementsEqual(dataField) {
                return .data(RedisValue.bytes(of: value.pointee))
            }
            names.append(String(decoding: nameBytes, as: UTF8.self))
            index += 2
        }
        return .noData(fields: names)
    }
}

/// An entry that holds no payload: why, and its raw text.
struct InvalidEntry: Error {
    let reason: String
    let raw: String
}
