import CHiredis

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A reply of Redis, copied out of hiredis.
enum RedisReply: Sendable, Equatable {
    case status(String)
    case error(String)
    case integer(Int64)
    case bulk([UInt8])
    case array([RedisReply])
    case null

    var text: String? {
        switch self {
        case .status(let text), .error(let text): return text
        case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
        default: return nil
        }
    }

    var elements: [RedisReply]? {
        if case .array(let elements) = self { elements } else { nil }
    }

    init(_ reply: redisReply) {
        switch reply.type {
        case REDIS_REPLY_STATUS: self = .status(String(cString: reply.str))
        case REDIS_REPLY_ERROR: self = .error(String(cString: reply.str))
        case REDIS_REPLY_INTEGER: self = .integer(reply.integer)
        case REDIS_REPLY_STRING: self = .bulk(Array(UnsafeRawBufferPointer(start: reply.str, count: reply.len)))
        case REDIS_REPLY_ARRAY:
            self = .array((0..<reply.elements).map { RedisReply(reply.element[$0]!.pointee) })
        default: self = .null
        }
    }
}

/// What a foreign producer (or an operator) does to a server: raw commands over hiredis, outside
/// the provider, on a thread of their own because hiredis blocks.
enum RedisAdmin {
    /// Connects to the server on `port`, sends `commands` one after another and returns their
    /// replies.
    static func send(port: Int, _ commands: [[[UInt8]]]) async throws -> [RedisReply] {
        try await onOwnThread("redis-admin") {
            guard let context = redisConnectWithTimeout("127.0.0.1", Int32(port), timeval(tv_sec: 5, tv_usec: 0)) else {
                throw HarnessError("cannot allocate a hiredis context")
            }
            defer { redisFree(context) }
            if context.pointee.err != 0 {
                throw HarnessError("cannot connect to 127.0.0.1:\(port): \(errorText(context))")
            }
            return try commands.map { try command(context, $0) }
        }
    }

    /// `send` for commands of text arguments.
    static func send(port: Int, _ commands: [String]...) async throws -> [RedisReply] {
        try await send(port: port, commands.map { $0.map { Array($0.utf8) } })
    }

    /// hiredis's description of the context's last error.
    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
    }

    private static func command(_ context: UnsafeMutablePointer<redisContext>, _ arguments: [[UInt8]]) throws -> RedisReply {
        let copies = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            if !bytes.isEmpty {
                bytes.withUnsafeBytes { UnsafeMutableRawPointer(copy).copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
            }
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var pointers = copies.map { UnsafePointer<CChar>?($0) }
        let lengths = arguments.map(\.count)
        guard let raw = redisCommandArgv(context, Int32(arguments.count), &pointers, lengths) else {
            throw HarnessError("redis command \(arguments.first.map { String(decoding: $0, as: UTF8.self) } ?? "") failed: \(errorText(context))")
        }
        defer { freeReplyObject(raw) }
        return RedisReply(raw.assumingMemoryBound(to: redisReply.self).pointee)
    }
}
