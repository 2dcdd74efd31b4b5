/// Writes ``JSONValue`` as compact UTF-8 JSON text (no insignificant whitespace).
///
/// Output re-reads with `JSONReader` to an equal value: doubles are written in their shortest
/// round-trip form and always carry a `.` or exponent so they stay doubles, and strings escape only
/// `"`, `\` and control characters (all other Unicode is written raw). With `sortedKeys`, object
/// members are ordered by the UTF-8 bytes of their names (that is, by code point), which is stable
/// across platforms and languages, unlike `String`'s Unicode-aware `<`.
enum JSONWriter {
    /// The value as UTF-8 JSON text.
    static func bytes(_ value: JSONValue, sortedKeys: Bool) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        write(value, into: &buffer, sortedKeys: sortedKeys)
        return buffer
    }

    /// The value as JSON text.
    static func string(_ value: JSONValue, sortedKeys: Bool) -> String {
        String(decoding: bytes(value, sortedKeys: sortedKeys), as: UTF8.self)
    }

    /// Appends the value as UTF-8 JSON text to `buffer`.
    ///
    /// Non-finite doubles are written as `null`: callers validate first, but writing must never trap.
    static func write(_ value: JSONValue, into buffer: inout [UInt8], sortedKeys: Bool) {
        var problem: JSONValue.Problem?
        write(value, into: &buffer, sortedKeys: sortedKeys, depthLeft: .max, problem: &problem)
    }

    /// Appends the value as UTF-8 JSON text to `buffer` and returns the first reason it cannot be
    /// read back (see ``JSONValue/isValidJSON``), or `nil`: validation and writing in one walk.
    /// When a problem is returned, what was appended is incomplete and must be discarded.
    static func writeValidating(_ value: JSONValue, into buffer: inout [UInt8], sortedKeys: Bool, depthLimit: Int) -> JSONValue.Problem? {
        var problem: JSONValue.Problem?
        write(value, into: &buffer, sortedKeys: sortedKeys, depthLeft: depthLimit, problem: &problem)
        return problem
    }

    /// `depthLeft` counts the arrays and objects that may still open; past it writing stops with
    /// ``JSONValue/Problem/tooDeep``. A non-finite double is written as `null` and recorded.
    private static func write(
        _ value: JSONValue,
        into buffer: inout [UInt8],
        sortedKeys: Bool,
        depthLeft: Int,
        problem: inout JSONValue.Problem?
    ) {
        switch value {
        case .null:
            appendLiteral("null", to: &buffer)
        case .bool(let flag):
            appendLiteral(flag ? "true" : "false", to: &buffer)
        case .int(let integer):
            writeInteger(integer, into: &buffer)
        case .double(let double):
            if !double.isFinite, problem == nil { problem = .nonFinite }
            writeDouble(double, into: &buffer)
        case .string(let string):
            writeString(string, into: &buffer)
        case .array(let elements):
            guard depthLeft > 0 else {
                problem = .tooDeep
                return
            }
            buffer.append(UInt8(ascii: "["))
            var first = true
            for element in elements {
                if !first { buffer.append(UInt8(ascii: ",")) }
                first = false
                write(element, into: &buffer, sortedKeys: sortedKeys, depthLeft: depthLeft - 1, problem: &problem)
                if problem == .tooDeep { return }
            }
            buffer.append(UInt8(ascii: "]"))
        case .object(let members):
            guard depthLeft > 0 else {
                problem = .tooDeep
                return
            }
            buffer.append(UInt8(ascii: "{"))
            if sortedKeys {
                let ordered = members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                writeMembers(ordered, into: &buffer, sortedKeys: sortedKeys, depthLeft: depthLeft - 1, problem: &problem)
            } else {
                writeMembers(members, into: &buffer, sortedKeys: sortedKeys, depthLeft: depthLeft - 1, problem: &problem)
            }
            if problem == .tooDeep { return }
            buffer.append(UInt8(ascii: "}"))
        }
    }

    private static func writeMembers(
        _ members: some Sequence<(key: String, value: JSONValue)>,
        into buffer: inout [UInt8],
        sortedKeys: Bool,
        depthLeft: Int,
        problem: inout JSONValue.Problem?
    ) {
        var first = true
        for (name, member) in members {
            if !first { buffer.append(UInt8(ascii: ",")) }
            first = false
            writeString(name, into: &buffer)
            buffer.append(UInt8(ascii: ":"))
            write(member, into: &buffer, sortedKeys: sortedKeys, depthLeft: depthLeft, problem: &problem)
            if problem == .tooDeep { return }
        }
    }

    private static func appendLiteral(_ literal: StaticString, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }

    private static func writeInteger(_ value: Int64, into buffer: inout [UInt8]) {
        if value < 0 { buffer.append(UInt8(ascii: "-")) }
        // `magnitude` is a UInt64, so Int64.min needs no special case.
        var magnitude = value.magnitude
        if magnitude < 10 {
            buffer.append(UInt8(ascii: "0") + UInt8(magnitude))
            return
        }
        // 20 digits hold UInt64.max; fill from the end to avoid reversing.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
            var start = 20
            while magnitude > 0 {
                start -= 1
                digits[start] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
            }
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: digits[start..<20]))
        }
    }

    private static func writeDouble(_ value: Double, into buffer: inout [UInt8]) {
        guard value.isFinite else {
            appendLiteral("null", to: &buffer)
            return
        }
        // `description` is the shortest text that reads back to the same Double ("-0.0", "1e+300").
        var text = value.description
        let looksIntegral = text.withUTF8 { utf8 in
            buffer.append(contentsOf: utf8)
            return !utf8.contains { $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        }
        // Keep the value a double when read back, rather than an int.
        if looksIntegral { appendLiteral(".0", to: &buffer) }
    }

    private static func writeString(_ string: String, into buffer: inout [UInt8]) {
        buffer.append(UInt8(ascii: "\""))
        // Native strings are contiguous UTF-8 already; only bridged ones need a copy.
        if string.utf8.withContiguousStorageIfAvailable({ writeEscaped($0, into: &buffer) }) == nil {
            var copy = string
            copy.withUTF8 { writeEscaped($0, into: &buffer) }
        }
        buffer.append(UInt8(ascii: "\""))
    }

    /// Appends `utf8` with `"`, `\` and control characters escaped.
    private static func writeEscaped(_ utf8: UnsafeBufferPointer<UInt8>, into buffer: inout [UInt8]) {
        // Copy runs of bytes that need no escaping in one go; most strings are a single run.
        var runStart = 0
        var index = 0
        while true {
            index = JSONStringScan.endOfPlainRun(in: utf8, from: index, stopAtNonASCII: false)
            guard index < utf8.count else { break }
            let byte = utf8[index]
            if runStart < index {
                buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            }
            index += 1
            runStart = index
            buffer.append(UInt8(ascii: "\\"))
            switch byte {
            case UInt8(ascii: "\""): buffer.append(UInt8(ascii: "\""))
            case UInt8(ascii: "\\"): buffer.append(UInt8(ascii: "\\"))
            case 0x0A: buffer.append(UInt8(ascii: "n"))
            case 0x0D: buffer.append(UInt8(ascii: "r"))
            case 0x09: buffer.append(UInt8(ascii: "t"))
            case 0x08: buffer.append(UInt8(ascii: "b"))
            case 0x0C: buffer.append(UInt8(ascii: "f"))
            default:
                let hexDigits: StaticString = "0123456789abcdef"
                buffer.append(UInt8(ascii: "u"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(UInt8(ascii: "0"))
                buffer.append(hexDigits.utf8Start[Int(byte >> 4)])
                buffer.append(hexDigits.utf8Start[Int(byte & 0xF)])
            }
        }
        if runStart < utf8.count {
            buffer.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart...]))
        }
    }
}
