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

    /// Appends `XADD <stream> [MAXLEN ~ <cap>] * data <json>`: the upstream provider's entry format,
    /// one field named `data` holding the payload's JSON text.
    mutating func appendXADD(stream: [UInt8], json: [UInt8], maxLength: Int?) {
        bytes.reserveCapacity(bytes.count + stream.count + json.count + 96)
        if let maxLength {
            appendHeader(8)
            appendArgument("XADD".utf8)
            appendArgument(stream)
            appendArgument("MAXLEN".utf8)
            appendArgument("~".utf8)
            appendArgument(String(maxLength).utf8)
        } else {
            appendHeader(5)
            appendArgument("XADD".utf8)
            appendArgument(stream)
        }
        appendArgument("*".utf8)
        appendArgument("data".utf8)
        appendArgument(json)
    }

    /// Appends another encoded command buffer.
    mutating func append(_ other: RESPCommand) {
        bytes.append(contentsOf: other.bytes)
        count += other.count
    }

    var isEmpty: Bool { count == 0 }

    private mutating func appendHeader(_ argumentCount: Int) {
        count += 1
        bytes.append(UInt8(ascii: "*"))
        appendDecimal(argumentCount)
        appendCRLF()
    }

    private mutating func appendArgument(_ argument: some Collection<UInt8>) {
        bytes.append(UInt8(ascii: "$"))
        appendDecimal(argument.count)
        appendCRLF()
        bytes.append(contentsOf: argument)
        appendCRLF()
    }

    private mutating func appendDecimal(_ value: Int) {
        // Digits in reverse into a fixed buffer: no String allocation per length header.
        var digits: (UInt64, UInt64, UInt64) = (0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            for index in stride(from: count - 1, through: 0, by: -1) { bytes.append(buffer[index]) }
        }
    }

    private mutating func appendCRLF() {
        bytes.append(13)
        bytes.append(10)
    }
}
