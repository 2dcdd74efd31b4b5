/// A strict RFC 8259 parser from UTF-8 bytes to ``JSONValue``.
///
/// Integers without a fraction or exponent that fit `Int64` become ``JSONValue/int(_:)``; every other
/// number becomes ``JSONValue/double(_:)``. Duplicate object keys keep the last value.
///
/// The parser is iterative, with an explicit stack, so hostile input can never overflow the thread's
/// stack (consumers may run on small-stack threads); nesting deeper than `maximumDepth` is an error.
/// Every failure is a ``MessageQueueError/Code/invalidPayload`` error that names the zero-based byte
/// offset of the problem.
enum JSONReader {
    /// The deepest nesting of arrays and objects accepted.
    static let maximumDepth = MessageQueuePayload.maxDepth

    /// Parses one JSON value, with optional whitespace around it, from UTF-8 bytes.
    static func parse(_ bytes: some Collection<UInt8>) throws(MessageQueueError) -> JSONValue {
        // Work on a contiguous buffer: unchecked pointer reads are what makes the scan fast.
        let result = bytes.withContiguousStorageIfAvailable { buffer in
            Result { () throws(MessageQueueError) -> JSONValue in
                var parser = JSONParser(input: buffer)
                return try parser.parseDocument()
            }
        }
        if let result { return try result.get() }
        let copy = Array(bytes)
        return try copy.withUnsafeBufferPointer { buffer throws(MessageQueueError) -> JSONValue in
            var parser = JSONParser(input: buffer)
            return try parser.parseDocument()
        }
    }
}

// MARK: - Parser

/// Byte values of the ASCII characters JSON syntax uses.
private enum ASCII {
    static let quote = UInt8(ascii: "\"")
    static let backslash = UInt8(ascii: "\\")
    static let slash = UInt8(ascii: "/")
    static let comma = UInt8(ascii: ",")
    static let colon = UInt8(ascii: ":")
    static let openBrace = UInt8(ascii: "{")
    static let closeBrace = UInt8(ascii: "}")
    static let openBracket = UInt8(ascii: "[")
    static let closeBracket = UInt8(ascii: "]")
    static let minus = UInt8(ascii: "-")
    static let plus = UInt8(ascii: "+")
    static let dot = UInt8(ascii: ".")
    static let zero = UInt8(ascii: "0")
    static let nine = UInt8(ascii: "9")
    static let lowerE = UInt8(ascii: "e")
    static let upperE = UInt8(ascii: "E")
    static let space = UInt8(ascii: " ")
    static let tab = UInt8(ascii: "\t")
    static let newline = UInt8(ascii: "\n")
    static let carriageReturn = UInt8(ascii: "\r")
}

/// The state of one parse. Not reusable across documents.
private struct JSONParser {
    /// An array or object whose members are still being read. Members live on the shared
    /// `values`/`keys` stacks from `valueStart`/`keyStart` on, so no per-container arrays are
    /// reallocated while they grow.
    private struct Frame {
        var isObject: Bool
        var valueStart: Int
        var keyStart: Int
        /// Where the container opened, for "unterminated" errors.
        var openedAt: Int
    }

    let input: UnsafeBufferPointer<UInt8>
    private var position = 0
    /// Reused buffer for strings that contain escapes.
    private var scratch: [UInt8] = []

    init(input: UnsafeBufferPointer<UInt8>) {
        self.input = input
    }

    mutating func parseDocument() throws(MessageQueueError) -> JSONValue {
        skipWhitespace()
        guard position < input.count else {
            throw failure(at: position, input.isEmpty ? "the text is empty; expected a JSON value" : "the text holds only whitespace; expected a JSON value")
        }
        let start = position
        let value: JSONValue
        if input[position] == ASCII.openBrace, let object = parseFlatObject() {
            value = object
        } else {
            position = start
            value = try parseValueTree()
        }
        skipWhitespace()
        guard position == input.count else {
            throw failure(at: position, "unexpected \(describeByte(at: position)) after the end of the JSON value; only whitespace may follow it")
        }
        return value
    }

    // MARK: Structure

    /// Reads the object at `position` straight into its dictionary, without the general parser's
    /// stacks: a payload is nearly always one object of strings, numbers and literals. A nested
    /// member value goes to the general parser. Returns `nil` on any error, and the caller parses
    /// the document again with the general parser, which reports it.
    private mutating func parseFlatObject() -> JSONValue? {
        let frame = Frame(isObject: true, valueStart: 0, keyStart: 0, openedAt: position)
        position += 1
        skipWhitespace()
        var members = [String: JSONValue](minimumCapacity: 4)
        if position < input.count, input[position] == ASCII.closeBrace {
            position += 1
            return .object(members)
        }
        var afterComma = false
        do throws(MessageQueueError) {
            while true {
                let name = try parseMemberName(frame: frame, afterComma: afterComma)
                skipWhitespace()
                guard position < input.count else { return nil }
                let value: JSONValue
                if let scalar = try parseScalar() {
                    value = scalar
                } else if input[position] == ASCII.openBrace || input[position] == ASCII.openBracket {
                    value = try parseValueTree(enclosingDepth: 1)
                } else {
                    return nil
                }
                members[name] = value  // last duplicate wins
                skipWhitespace()
                guard position < input.count else { return nil }
                if input[position] == ASCII.comma {
                    position += 1
                    skipWhitespace()
                    afterComma = true
                } else if input[position] == ASCII.closeBrace {
                    position += 1
                    return .object(members)
                } else {
                    return nil
                }
            }
        } catch {
            return nil
        }
    }

    /// Parses the value at `position`, inside `enclosingDepth` containers already open.
    private mutating func parseValueTree(enclosingDepth: Int = 0) throws(MessageQueueError) -> JSONValue {
        var frames: [Frame] = []
        var values: [JSONValue] = []
        var keys: [String] = []
        // Room for a typical payload up front: growing from empty reallocates each stack twice.
        frames.reserveCapacity(4)
        values.reserveCapacity(8)
        keys.reserveCapacity(8)
        var afterComma = false

        parseValue: while true {
            skipWhitespace()
            guard position < input.count else {
                throw failure(at: position, unterminatedDescription(frames.last, expecting: "a JSON value"))
            }
            var value: JSONValue
            let byte = input[position]
            if let scalar = try parseScalar() {
                value = scalar
            } else {
                switch byte {
                case ASCII.openBrace, ASCII.openBracket:
                    guard enclosingDepth + frames.count < JSONReader.maximumDepth else {
                        throw failure(at: position, "arrays and objects are nested more than \(JSONReader.maximumDepth) levels deep")
                    }
                    let isObject = byte == ASCII.openBrace
                    let openedAt = position
                    position += 1
                    skipWhitespace()
                    let closer = isObject ? ASCII.closeBrace : ASCII.closeBracket
                    if position < input.count, input[position] == closer {
                        position += 1
                        value = isObject ? .object([:]) : .array([])
                    } else {
                        frames.append(Frame(isObject: isObject, valueStart: values.count, keyStart: keys.count, openedAt: openedAt))
                        if isObject {
                            keys.append(try parseMemberName(frame: frames[frames.count - 1], afterComma: false))
                        }
                        afterComma = false
                        continue parseValue
                    }
                case ASCII.closeBracket, ASCII.closeBrace:
                    if afterComma {
                        throw failure(at: position, "trailing comma before '\(Character(Unicode.Scalar(byte)))'; remove the comma")
                    }
                    throw failure(at: position, "expected a JSON value but found '\(Character(Unicode.Scalar(byte)))'")
                default:
                    throw failure(at: position, unexpectedValueDescription(byte))
                }
            }

            // A value is complete: add it to its container, closing containers as they end.
            while let frame = frames.last {
                values.append(value)
                skipWhitespace()
                guard position < input.count else {
                    throw failure(at: position, unterminatedDescription(frame, expecting: frame.isObject ? "',' or '}'" : "',' or ']'"))
                }
                let next = input[position]
                if next == ASCII.comma {
                    position += 1
                    if frame.isObject {
                        skipWhitespace()
                        keys.append(try parseMemberName(frame: frame, afterComma: true))
                    }
                    afterComma = true
                    continue parseValue
                }
                if frame.isObject, next == ASCII.closeBrace {
                    position += 1
                    var members = [String: JSONValue](minimumCapacity: values.count - frame.valueStart)
                    var keyIndex = frame.keyStart
                    for index in frame.valueStart..<values.count {
                        members[keys[keyIndex]] = values[index]  // last duplicate wins
                        keyIndex += 1
                    }
                    values.removeSubrange(frame.valueStart...)
                    keys.removeSubrange(frame.keyStart...)
                    frames.removeLast()
                    value = .object(members)
                } else if !frame.isObject, next == ASCII.closeBracket {
                    position += 1
                    let elements = Array(values[frame.valueStart...])
                    values.removeSubrange(frame.valueStart...)
                    frames.removeLast()
                    value = .array(elements)
                } else {
                    let expected = frame.isObject ? "',' or '}' after an object member" : "',' or ']' after an array element"
                    throw failure(at: position, "expected \(expected) but found \(describeByte(at: position))")
                }
            }
            return value
        }
    }

    /// Reads the string, number or literal at `position`; `nil`, reading nothing, when another
    /// byte starts there (a container, or an error the caller reports).
    private mutating func parseScalar() throws(MessageQueueError) -> JSONValue? {
        switch input[position] {
        case ASCII.quote:
            position += 1
            return .string(try parseString())
        case ASCII.minus, ASCII.zero...ASCII.nine:
            return try parseNumber()
        case UInt8(ascii: "t"):
            try expectLiteral("true")
            return .bool(true)
        case UInt8(ascii: "f"):
            try expectLiteral("false")
            return .bool(false)
        case UInt8(ascii: "n"):
            try expectLiteral("null")
            return .null
        default:
            return nil
        }
    }

    /// Reads `"name"` and the `:` after it; `position` is at the opening quote (after whitespace).
    private mutating func parseMemberName(frame: Frame, afterComma: Bool) throws(MessageQueueError) -> String {
        guard position < input.count else {
            throw failure(at: position, unterminatedDescription(frame, expecting: "a member name"))
        }
        let byte = input[position]
        guard byte == ASCII.quote else {
            if afterComma, byte == ASCII.closeBrace {
                throw failure(at: position, "trailing comma before '}'; remove the comma")
            }
            if byte == UInt8(ascii: "'") {
                throw failure(at: position, "object member names must be in double quotes, not single quotes")
            }
            throw failure(at: position, "expected a member name in double quotes but found \(describeByte(at: position))")
        }
        position += 1
        let name = try parseString()
        skipWhitespace()
        guard position < input.count, input[position] == ASCII.colon else {
            if position >= input.count {
                throw failure(at: position, unterminatedDescription(frame, expecting: "':'"))
            }
            throw failure(at: position, "expected ':' after the member name but found \(describeByte(at: position))")
        }
        position += 1
        return name
    }

    private mutating func skipWhitespace() {
        while position < input.count {
            switch input[position] {
            case ASCII.space, ASCII.newline, ASCII.carriageReturn, ASCII.tab: position += 1
            default: return
            }
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(MessageQueueError) {
        let count = literal.utf8CodeUnitCount
        let start = position
        var offset = 0
        while offset < count {
            guard start + offset < input.count, input[start + offset] == literal.utf8Start[offset] else {
                throw failure(at: start, "invalid literal; expected '\(literal)'")
            }
            offset += 1
        }
        position = start + count
    }

    // MARK: Strings

    /// Reads the rest of a string; `position` is just past the opening quote.
    private mutating func parseString() throws(MessageQueueError) -> String {
        let start = position
        var index = start
        let end = input.count
        // Fast path: no escapes, so the string is a slice of the input.
        while index < end {
            index = JSONStringScan.endOfPlainRun(in: input, from: index, stopAtNonASCII: true)
            guard index < end else { break }
            let byte = input[index]
            if byte == ASCII.quote {
                position = index + 1
                return String(decoding: UnsafeBufferPointer(rebasing: input[start..<index]), as: UTF8.self)
            }
            if byte == ASCII.backslash {
                return try parseEscapedString(start: start, firstEscape: index)
            }
            if byte < 0x20 {
                throw controlCharacterFailure(at: index)
            }
            // The scan stops at nothing else: a byte that starts a multi-byte character.
            index = try endOfUTF8Sequence(at: index)
        }
        throw failure(at: start - 1, "unterminated string; expected a closing '\"'")
    }

    private mutating func parseEscapedString(start: Int, firstEscape: Int) throws(MessageQueueError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: input[start..<firstEscape]))
        var index = firstEscape
        let end = input.count
        while index < end {
            let byte = input[index]
            if byte == ASCII.quote {
                position = index + 1
                return String(decoding: scratch, as: UTF8.self)
            }
            if byte == ASCII.backslash {
                index = try appendEscape(at: index)
                continue
            }
            // Copy a run of plain bytes in one go.
            let runStart = index
            while index < end {
                index = JSONStringScan.endOfPlainRun(in: input, from: index, stopAtNonASCII: true)
                guard index < end else { break }
                let plain = input[index]
                if plain == ASCII.quote || plain == ASCII.backslash { break }
                if plain < 0x20 { throw controlCharacterFailure(at: index) }
                index = try endOfUTF8Sequence(at: index)
            }
            scratch.append(contentsOf: UnsafeBufferPointer(rebasing: input[runStart..<index]))
        }
        throw failure(at: start - 1, "unterminated string; expected a closing '\"'")
    }

    /// Decodes the escape at `index` (a backslash) into `scratch` and returns the index after it.
    private mutating func appendEscape(at index: Int) throws(MessageQueueError) -> Int {
        guard index + 1 < input.count else {
            throw failure(at: index, "unterminated escape sequence at the end of the text")
        }
        let escaped = input[index + 1]
        switch escaped {
        case ASCII.quote, ASCII.backslash, ASCII.slash: scratch.append(escaped)
        case UInt8(ascii: "b"): scratch.append(0x08)
        case UInt8(ascii: "f"): scratch.append(0x0C)
        case UInt8(ascii: "n"): scratch.append(0x0A)
        case UInt8(ascii: "r"): scratch.append(0x0D)
        case UInt8(ascii: "t"): scratch.append(0x09)
        case UInt8(ascii: "u"):
            let unit = try hexQuad(at: index + 2, escapeStart: index)
            switch unit {
            case 0xD800...0xDBFF:
                // A high surrogate only means something followed by an escaped low surrogate.
                guard index + 7 < input.count,
                      input[index + 6] == ASCII.backslash, input[index + 7] == UInt8(ascii: "u")
                else {
                    throw failure(at: index, "lone surrogate \(escapeText(unit)); a high surrogate must be followed by a \\uDC00–\\uDFFF escape")
                }
                let low = try hexQuad(at: index + 8, escapeStart: index + 6)
                guard (0xDC00...0xDFFF).contains(low) else {
                    throw failure(at: index, "lone surrogate \(escapeText(unit)) followed by \(escapeText(low)), which is not a low surrogate")
                }
                let scalar = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00)
                appendUTF8(scalar)
                return index + 12
            case 0xDC00...0xDFFF:
                throw failure(at: index, "lone surrogate \(escapeText(unit)); a low surrogate must follow a \\uD800–\\uDBFF escape")
            default:
                appendUTF8(unit)
                return index + 6
            }
        default:
            throw failure(at: index, "invalid escape sequence '\\\(describeEscaped(escaped))'; valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX")
        }
        return index + 2
    }

    private func hexQuad(at index: Int, escapeStart: Int) throws(MessageQueueError) -> UInt32 {
        guard index + 4 <= input.count else {
            throw failure(at: escapeStart, "unterminated \\u escape; expected four hexadecimal digits")
        }
        var result: UInt32 = 0
        for offset in 0..<4 {
            let byte = input[index + offset]
            let digit: UInt8
            switch byte {
            case ASCII.zero...ASCII.nine: digit = byte - ASCII.zero
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default:
                throw failure(at: escapeStart, "invalid \\u escape; expected four hexadecimal digits but found \(describeByte(at: index + offset))")
            }
            result = result << 4 | UInt32(digit)
        }
        return result
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }

    /// Validates the multi-byte UTF-8 sequence whose lead byte is at `index` (Unicode Table 3-7:
    /// no overlong forms, no surrogates, nothing above U+10FFFF) and returns the index after it.
    private func endOfUTF8Sequence(at index: Int) throws(MessageQueueError) -> Int {
        let lead = input[index]
        let length: Int
        var secondRange: ClosedRange<UInt8> = 0x80...0xBF
        switch lead {
        case 0xC2...0xDF: length = 2
        case 0xE0: length = 3; secondRange = 0xA0...0xBF
        case 0xE1...0xEC, 0xEE...0xEF: length = 3
        case 0xED: length = 3; secondRange = 0x80...0x9F
        case 0xF0: length = 4; secondRange = 0x90...0xBF
        case 0xF1...0xF3: length = 4
        case 0xF4: length = 4; secondRange = 0x80...0x8F
        default:
            throw failure(at: index, "invalid UTF-8: byte \(hex(lead)) cannot start a character")
        }
        guard index + length <= input.count else {
            throw failure(at: index, "invalid UTF-8: the character starting with byte \(hex(lead)) is cut off by the end of the text")
        }
        guard secondRange.contains(input[index + 1]) else {
            throw failure(at: index, "invalid UTF-8: byte \(hex(lead)) is followed by \(hex(input[index + 1])), which cannot continue it")
        }
        var offset = 2
        while offset < length {
            let byte = input[index + offset]
            guard byte & 0xC0 == 0x80 else {
                throw failure(at: index, "invalid UTF-8: byte \(hex(lead)) is followed by \(hex(byte)), which cannot continue it")
            }
            offset += 1
        }
        return index + length
    }

    // MARK: Numbers

    private mutating func parseNumber() throws(MessageQueueError) -> JSONValue {
        let start = position
        let end = input.count
        var index = start
        let negative = input[index] == ASCII.minus
        if negative { index += 1 }

        guard index < end, isDigit(input[index]) else {
            if index < end, input[index] == UInt8(ascii: "I") {
                throw failure(at: start, "-Infinity is not valid JSON; JSON numbers must be finite")
            }
            throw failure(at: index, "expected a digit after '-' but found \(describeByte(at: index))")
        }
        let digitsStart = index
        if input[index] == ASCII.zero {
            index += 1
            if index < end, isDigit(input[index]) {
                throw failure(at: start, "numbers must not have leading zeros")
            }
        } else {
            while index < end, isDigit(input[index]) { index += 1 }
        }
        let digitsEnd = index
        var isInteger = true

        if index < end, input[index] == ASCII.dot {
            isInteger = false
            index += 1
            guard index < end, isDigit(input[index]) else {
                throw failure(at: index, "expected a digit after the decimal point but found \(describeByte(at: index))")
            }
            while index < end, isDigit(input[index]) { index += 1 }
        }
        if index < end, input[index] == ASCII.lowerE || input[index] == ASCII.upperE {
            isInteger = false
            index += 1
            if index < end, input[index] == ASCII.plus || input[index] == ASCII.minus { index += 1 }
            guard index < end, isDigit(input[index]) else {
                throw failure(at: index, "expected a digit in the exponent but found \(describeByte(at: index))")
            }
            while index < end, isDigit(input[index]) { index += 1 }
        }
        position = index

        if isInteger {
            let digitCount = digitsEnd - digitsStart
            if digitCount <= 18 {
                // 18 digits always fit, so no overflow checks are needed.
                var magnitude: Int64 = 0
                for digitIndex in digitsStart..<digitsEnd {
                    magnitude = magnitude &* 10 &+ Int64(input[digitIndex] &- ASCII.zero)
                }
                return .int(negative ? -magnitude : magnitude)
            }
            if digitCount == 19 {
                // 19 digits fit UInt64; whether they fit Int64 depends on the sign.
                var magnitude: UInt64 = 0
                for digitIndex in digitsStart..<digitsEnd {
                    magnitude = magnitude &* 10 &+ UInt64(input[digitIndex] &- ASCII.zero)
                }
                if negative, magnitude <= UInt64(Int64.max) + 1 {
                    return .int(Int64(truncatingIfNeeded: 0 &- magnitude))
                }
                if !negative, magnitude <= UInt64(Int64.max) {
                    return .int(Int64(magnitude))
                }
            }
            // Out of Int64 range: fall through to a double.
        }

        // Swift's Double(String) is correctly rounded.
        let text = String(decoding: UnsafeBufferPointer(rebasing: input[start..<index]), as: UTF8.self)
        guard let double = Double(text), double.isFinite else {
            let shown = text.utf8.count > 40 ? String(text.prefix(40)) + "…" : text
            throw failure(at: start, "the number \(shown) is too large for a 64-bit floating-point value")
        }
        return .double(double)
    }

    private func isDigit(_ byte: UInt8) -> Bool {
        byte &- ASCII.zero < 10
    }

    // MARK: Errors

    private func failure(at offset: Int, _ what: String) -> MessageQueueError {
        MessageQueueError(.invalidPayload, "invalid JSON at byte \(offset): \(what)")
    }

    private func controlCharacterFailure(at index: Int) -> MessageQueueError {
        failure(at: index, "unescaped control character \(hex(input[index])) in a string; write it as an escape such as \\n or \\u00XX")
    }

    private func unterminatedDescription(_ frame: Frame?, expecting: String) -> String {
        guard let frame else { return "unexpected end of the text; expected \(expecting)" }
        let kind = frame.isObject ? "object" : "array"
        return "unexpected end of the text; expected \(expecting) in the \(kind) opened at byte \(frame.openedAt)"
    }

    private func unexpectedValueDescription(_ byte: UInt8) -> String {
        switch byte {
        case UInt8(ascii: "N"):
            "NaN is not valid JSON; JSON numbers must be finite"
        case UInt8(ascii: "I"):
            "Infinity is not valid JSON; JSON numbers must be finite"
        case UInt8(ascii: "'"):
            "strings must be in double quotes, not single quotes"
        case ASCII.plus:
            "numbers must not start with '+'"
        case ASCII.dot:
            "numbers must start with a digit, not '.'"
        case 0xEF where position == 0:
            "the text starts with a byte order mark or invalid byte 0xEF; send UTF-8 without a byte order mark"
        default:
            "expected a JSON value but found \(describeByte(at: position))"
        }
    }

    private func describeByte(at index: Int) -> String {
        guard index < input.count else { return "the end of the text" }
        let byte = input[index]
        if byte >= 0x21, byte < 0x7F {
            return "'\(Character(Unicode.Scalar(byte)))'"
        }
        return "byte \(hex(byte))"
    }

    private func describeEscaped(_ byte: UInt8) -> String {
        byte >= 0x21 && byte < 0x7F ? String(Character(Unicode.Scalar(byte))) : hex(byte)
    }

    private func hex(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return "0x" + String(decoding: [digits[Int(byte >> 4)], digits[Int(byte & 0xF)]], as: UTF8.self)
    }

    private func escapeText(_ unit: UInt32) -> String {
        let text = String(unit, radix: 16, uppercase: true)
        return "\\u" + String(repeating: "0", count: max(0, 4 - text.count)) + text
    }
}
