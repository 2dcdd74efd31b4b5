import AbstractBackend

/// Redis commands encoded in the wire protocol (RESP arrays of bulk strings), ready for
/// `redisAppendFormattedCommand`.
///
/// Encoding happens on the caller's task, not on the connection thread, so the thread that owns
/// the socket only copies bytes; several commands can share one buffer and go out in one write.
struct RESPCommand: Sendable {
    /// The encoded bytes of one or more commands.
    private(set) var bytes: [UInt8] = []
    /// How many commands `bytes` holds, which is how many replies to read.
    private(set) var count = 0

    init() {}

    /// One command from its arguments.
    init(_ arguments: String...) {
        append(arguments)
    }

    /// Appends one command from its arguments.
    mutating func append(_ arguments: [String]) {
        appendHeader(arguments.count)
        for argument in arguments { appendArgument(argument.utf8) }
    }

    /// Appends one command whose arguments are already split into byte sequences.
    mutating func append(_ arguments: [[UInt8]]) {
        appendHeader(arguments.count)
        for argument in arguments { appendArgument(argument) }
    }

    /// The encoded start of `XADD <stream> [MAXLEN ~ <cap>] * data`, up to the `data` value:
    /// computed once per key, so a publish only appends the JSON.
    static func xaddPrefix(stream: [UInt8], maxLength: Int?) -> [UInt8] {
        var command = RESPCommand()
        var arguments: [[UInt8]] = [Array("XADD".utf8), stream]
        if let maxLength { arguments += [Array("MAXLEN".utf8), Array("~".utf8), Array(String(maxLength).utf8)] }
        arguments += [Array("*".utf8), Array("data".utf8)]
        command.appendHeader(arguments.count + 1)
        for argument in arguments { command.appendArgument(argument) }
        return command.bytes
    }

    /// Appends one `XADD` (see ``xaddPrefix(stream:maxLength:)``) whose `data` value is the
    /// payload's compact JSON — the upstream provider's entry format — written straight into the
    /// buffer. On error nothing is appended.
    mutating func appendXADD(prefix: [UInt8], payload: MessageQueuePayload) throws(MessageQueueError) {
        let start = bytes.count
        if bytes.capacity < start + prefix.count + 160 {
            bytes.reserveCapacity(max(start + prefix.count + 160, bytes.capacity * 2))
        }
        bytes.append(contentsOf: prefix)
        // The length goes before the JSON but is known only after it: leave room for the longest
        // header, write the JSON, then close the gap.
        let gap = 22   // "$", up to 19 digits, CR LF
        let headerStart = bytes.count
        bytes.append(contentsOf: repeatElement(0, count: gap))
        do {
            try payload.appendJSON(to: &bytes)
        } catch {
            bytes.removeSubrange(start...)
            throw error
        }
        let length = bytes.count - headerStart - gap
        var digits = 1
        var power = 10
        while power <= length { digits += 1; power &*= 10 }
        let headerCount = digits + 3   // $, the digits, CR LF
        bytes.withUnsafeMutableBufferPointer { buffer in
            let header = buffer.baseAddress! + headerStart
            header[0] = UInt8(ascii: "$")
            var rest = length
            for index in stride(from: digits, to: 0, by: -1) {
                header[index] = UInt8(ascii: "0") &+ UInt8(rest % 10)
                rest /= 10
            }
            header[digits + 1] = 13
            header[digits + 2] = 10
            (header + headerCount).update(from: header + gap, count: length)
        }
        bytes.removeLast(gap - headerCount)
        appendCRLF()
        count += 1
    }

    /// Appends another encoded command buffer.
    mutating func append(_ other: RESPCommand) {
        bytes.append(contentsOf: other.bytes)
        count += other.count
    }

    var isEmpty: Bool { count == 0 }

    fileprivate mutating func appendHeader(_ argumentCount: Int) {
        count += 1
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        appendCRLF()
    }

    fileprivate mutating func appendArgument(_ argument: some Collection<UInt8>) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count)
        appendCRLF()
        bytes.append(contentsOf: argument)
        appendCRLF()
    }

    private mutating func appendDecimal(_ value: Int) {
        // Argument counts and short lengths, without going through String.
        switch value {
        case 0..<10:
            bytes.append(UInt8(ascii: "0") &+ UInt8(value))
        case 10..<100:
            bytes.append(UInt8(ascii: "0") &+ UInt8(value / 10))
            bytes.append(UInt8(ascii: "0") &+ UInt8(value % 10))
        default:
            bytes.append(contentsOf: String(value).utf8)
        }
    }

    private mutating func appendCRLF() {
        bytes.append(13)
        bytes.append(10)
    }
}
