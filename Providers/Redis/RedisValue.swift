import CHiredis

/// A Redis reply copied out of hiredis's reply tree, for commands off the hot path.
///
/// Hot paths (stream reads, publish acknowledgements) read `redisReply` directly on the
/// connection thread instead; this copy is for everything else.
enum RedisValue: Sendable, Equatable {
    case bulk([UInt8])
    case status(String)
    case error(String)
    case integer(Int64)
    case null
    case array([RedisValue])

    /// Copies `reply` and everything under it.
    init(_ reply: UnsafePointer<redisReply>) {
        let node = reply.pointee
        switch node.type {
        case REDIS_REPLY_STRING:
            self = .bulk(RedisValue.bytes(of: node))
        case REDIS_REPLY_STATUS:
            self = .status(String(decoding: RedisValue.bytes(of: node), as: UTF8.self))
        case REDIS_REPLY_ERROR:
            self = .error(String(decoding: RedisValue.bytes(of: node), as: UTF8.self))
        case REDIS_REPLY_INTEGER:
            self = .integer(Int64(node.integer))
        case REDIS_REPLY_ARRAY:
            var elements: [RedisValue] = []
            elements.reserveCapacity(node.elements)
            for index in 0..<node.elements {
                guard let element = node.element[index] else { elements.append(.null); continue }
                elements.append(RedisValue(element))
            }
            self = .array(elements)
        default:
            self = .null
        }
    }

    /// The bytes of a string, status or error reply.
    static func bytes(of node: redisReply) -> [UInt8] {
        guard let str = node.str, node.len > 0 else { return [] }
        return str.withMemoryRebound(to: UInt8.self, capacity: node.len) {
            Array(UnsafeBufferPointer(start: $0, count: node.len))
        }
    }

    /// The text of a bulk string or status reply.
    var text: String? {
        switch self {
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        case .status(let text): return text
        default: return nil
        }
    }

    /// The value of an integer reply, or of a bulk string holding a decimal integer.
    var integer: Int64? {
        switch self {
        case .integer(let value): return value
        case .bulk: return text.flatMap { Int64($0) }
        default: return nil
        }
    }

    /// The elements of an array reply; an empty list for a null reply.
    var elements: [RedisValue]? {
        switch self {
        case .array(let elements): return elements
        case .null: return []
        default: return nil
        }
    }

    /// The message of an error reply.
    var errorMessage: String? {
        if case .error(let message) = self { return message }
        return nil
    }

    /// The fields of a flat `[name, value, name, value, …]` array, as `XINFO` returns them.
    var fields: [String: RedisValue] {
        guard let elements = elements else { return [:] }
        var fields: [String: RedisValue] = [:]
        var index = 0
        while index + 1 < elements.count {
            if let name = elements[index].text { fields[name] = elements[index + 1] }
            index += 2
        }
        return fields
    }
}
