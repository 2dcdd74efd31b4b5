import XCTest
@testable import AbstractBackend

/// Tests of ``JSONReader``: what it accepts, what it produces, and that every malformed input is an
/// `invalidPayload` error with a byte offset rather than a crash.
final class JSONReaderTests: XCTestCase {
    private func parse(_ text: String, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        try JSONReader.parse(Array(text.utf8))
    }

    /// Asserts that `bytes` is rejected with `invalidPayload` and returns the message.
    @discardableResult
    private func assertRejects(
        _ bytes: [UInt8],
        containing fragment: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> String? {
        do {
            let value = try JSONReader.parse(bytes)
            XCTFail("expected an error for \(bytes) but parsed \(value)", file: file, line: line)
            return nil
        } catch {
            XCTAssertEqual(error.code, .invalidPayload, file: file, line: line)
            XCTAssertTrue(error.message.hasPrefix("invalid JSON at byte "), error.message, file: file, line: line)
            if let fragment {
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
            return error.message
        }
    }

    @discardableResult
    private func assertRejects(
        _ text: String,
        containing fragment: String? = nil,
        file: StaticString = #filePath,
        line: UInt = #line
    ) -> String? {
        assertRejects(Array(text.utf8), containing: fragment, file: file, line: line)
    }

    // MARK: Accepted input

    func testParsesEveryKindOfValue() throws {
        let value = try parse(#"{"a":1,"b":[true,false,null],"c":1.5,"d":"x","e":{},"f":[]}"#)
        XCTAssertEqual(value, .object([
            "a": .int(1),
            "b": .array([.bool(true), .bool(false), .null]),
            "c": .double(1.5),
            "d": .string("x"),
            "e": .object([:]),
            "f": .array([]),
        ]))
    }

    func testScalarsAtTheTopLevel() throws {
        XCTAssertEqual(try parse("true"), .bool(true))
        XCTAssertEqual(try parse("false"), .bool(false))
        XCTAssertEqual(try parse("null"), .null)
        XCTAssertEqual(try parse(#""hi""#), .string("hi"))
        XCTAssertEqual(try parse("0"), .int(0))
        XCTAssertEqual(try parse("-12"), .int(-12))
    }

    func testWhitespaceAroundAndBetweenTokens() throws {
        let value = try parse(" \t\r\n{ \"a\" :\n[ 1 ,\t2 ] , \"b\"\r\n: { } }\n\t ")
        XCTAssertEqual(value, ["a": [1, 2], "b": .object([:])])
    }

    func testEmptyContainers() throws {
        XCTAssertEqual(try parse("{}"), .object([:]))
        XCTAssertEqual(try parse("[]"), .array([]))
        XCTAssertEqual(try parse("[ ]"), .array([]))
        XCTAssertEqual(try parse("{ }"), .object([:]))
        XCTAssertEqual(try parse("[[],{},[[]]]"), .array([.array([]), .object([:]), .array([.array([])])]))
    }

    func testIntegersAndDoublesStayApart() throws {
        XCTAssertEqual(try parse("42"), .int(42))
        XCTAssertEqual(try parse("42.0"), .double(42))
        XCTAssertEqual(try parse("1e2"), .double(100))
        XCTAssertEqual(try parse("1E2"), .double(100))
        XCTAssertEqual(try parse("1e+2"), .double(100))
        XCTAssertEqual(try parse("25e-1"), .double(2.5))
        XCTAssertEqual(try parse("-0"), .int(0))
        XCTAssertEqual(try parse("-0.5"), .double(-0.5))
        XCTAssertEqual(try parse("0.1"), .double(0.1))
        let negativeZero = try XCTUnwrap(try parse("-0.0").doubleValue)
        XCTAssertEqual(negativeZero.sign, .minus)
        XCTAssertEqual(negativeZero, 0)
    }

    func testInt64BoundariesAndOverflowToDouble() throws {
        XCTAssertEqual(try parse("9223372036854775807"), .int(.max))
        XCTAssertEqual(try parse("-9223372036854775808"), .int(.min))
        XCTAssertEqual(try parse("999999999999999999"), .int(999_999_999_999_999_999))
        XCTAssertEqual(try parse("-999999999999999999"), .int(-999_999_999_999_999_999))
        XCTAssertEqual(try parse("1000000000000000000"), .int(1_000_000_000_000_000_000))
        XCTAssertEqual(try parse("9223372036854775808"), .double(9_223_372_036_854_775_808.0))
        XCTAssertEqual(try parse("-9223372036854775809"), .double(-9_223_372_036_854_775_809.0))
        XCTAssertEqual(try parse("9999999999999999999"), .double(1e19))
        XCTAssertEqual(try parse("123456789012345678901234567890"), .double(1.2345678901234568e29))
    }

    func testDoublesAreCorrectlyRounded() throws {
        XCTAssertEqual(try parse("1.7976931348623157e308"), .double(.greatestFiniteMagnitude))
        XCTAssertEqual(try parse("5e-324"), .double(.leastNonzeroMagnitude))
        XCTAssertEqual(try parse("2.2250738585072014e-308"), .double(.leastNormalMagnitude))
        XCTAssertEqual(try parse("0.30000000000000004"), .double(0.1 + 0.2))
        XCTAssertEqual(try parse("1e-400"), .double(0))
    }

    func testNumbersTooLargeForADoubleAreRejected() {
        assertRejects("1e400", containing: "too large")
        assertRejects("-1e400", containing: "too large")
        assertRejects("[" + String(repeating: "9", count: 400) + "]", containing: "too large")
    }

    func testStringEscapes() throws {
        let value = try parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\u00E9\u20ac\ud83d\ude00\u0000end""#)
        XCTAssertEqual(value, .string("\"\\/\u{08}\u{0C}\n\r\tAéé€😀\u{0}end"))
    }

    func testRawUnicodeInStrings() throws {
        let text = "é 中文 😀 👨‍👩‍👧‍👦 🇯🇵 \u{10FFFD}"
        XCTAssertEqual(try parse("\"\(text)\""), .string(text))
        // Escapes after raw multi-byte characters take the slow path; it must keep them intact.
        XCTAssertEqual(try parse("\"中文\\n😀\\t\u{10FFFD}\""), .string("中文\n😀\t\u{10FFFD}"))
    }

    func testDuplicateKeysLastWins() throws {
        XCTAssertEqual(try parse(#"{"a":1,"b":2,"a":3}"#), ["a": 3, "b": 2])
        XCTAssertEqual(try parse(#"{"a":{"x":1},"a":[1]}"#), ["a": [1]])
    }

    func testDeepNestingWithinTheLimit() throws {
        let depth = 200
        var value = try parse(String(repeating: "[", count: depth) + "7" + String(repeating: "]", count: depth))
        for _ in 0..<depth {
            guard case .array(let elements) = value, elements.count == 1 else {
                return XCTFail("expected a one-element array, found \(value)")
            }
            value = elements[0]
        }
        XCTAssertEqual(value, .int(7))

        let objects = String(repeating: #"{"k":"#, count: depth) + "null" + String(repeating: "}", count: depth)
        XCTAssertNotNil(try parse(objects).objectValue?["k"])

        let atLimit = JSONReader.maximumDepth
        XCTAssertNoThrow(try parse(String(repeating: "[", count: atLimit) + String(repeating: "]", count: atLimit)))
    }

    func testNestingBeyondTheLimitIsAnError() {
        let text = String(repeating: "[", count: 600) + String(repeating: "]", count: 600)
        let message = assertRejects(text, containing: "nested more than 512 levels")
        XCTAssertEqual(message?.hasPrefix("invalid JSON at byte 512:"), true, message ?? "")
        assertRejects(String(repeating: "[", count: 513) + String(repeating: "]", count: 513), containing: "nested")
        // Far deeper than any stack could recurse: still just an error.
        assertRejects(String(repeating: "[", count: 1_000_000), containing: "nested")
    }

    /// Objects take a faster path than arrays at the top level; the limit and its error are the same.
    func testObjectNestingHasTheSameLimitAsArrays() throws {
        let limit = JSONReader.maximumDepth
        func objects(_ depth: Int) -> String {
            String(repeating: #"{"k":"#, count: depth) + "1" + String(repeating: "}", count: depth)
        }
        XCTAssertNoThrow(try parse(objects(limit)))
        let message = assertRejects(objects(limit + 1), containing: "nested more than 512 levels")
        XCTAssertEqual(message?.hasPrefix("invalid JSON at byte \(5 * limit):"), true, message ?? "")
        // An error after a nested member is reported as the general parser reports it.
        let missingComma = assertRejects(#"{"a":{"b":1},"c":1 "d":2}"#, containing: "expected ',' or '}' after an object member")
        XCTAssertEqual(missingComma?.hasPrefix("invalid JSON at byte 19:"), true, missingComma ?? "")
        assertRejects(#"{"a":1,}"#, containing: "trailing comma before '}'")
        XCTAssertEqual(try parse(#" { "a" : [1, {"b": null}] , "a" : "last" } "#), ["a": "last"])
    }

    func testNonContiguousInputIsCopied() throws {
        let reversed = Array(#"]"x",1["#.utf8).reversed()
        XCTAssertEqual(try JSONReader.parse(reversed), [1, "x"])
        XCTAssertEqual(try JSONReader.parse("[1.5]".utf8), [1.5])
    }

    // MARK: Rejected input

    func testEmptyInput() {
        assertRejects("", containing: "empty")
        assertRejects("  \n", containing: "only whitespace")
    }

    func testTruncatedInput() {
        assertRejects(#"{"a":1"#, containing: "end of the text")
        assertRejects(#"{"a":"#, containing: "end of the text")
        assertRejects(#"{"a""#, containing: "end of the text")
        assertRejects(#"{"a"#, containing: "unterminated string")
        assertRejects("[1,2", containing: "array opened at byte 0")
        assertRejects("[", containing: "end of the text")
        assertRejects(#""abc"#, containing: "unterminated string")
        assertRejects("tru", containing: "expected 'true'")
        assertRejects("nul", containing: "expected 'null'")
        assertRejects("-", containing: "expected a digit after '-'")
        assertRejects(#""\u12"#, containing: "\\u escape")
        assertRejects(#""\"#, containing: "escape")
    }

    func testTrailingCommas() {
        assertRejects("[1,]", containing: "trailing comma")
        assertRejects(#"{"a":1,}"#, containing: "trailing comma")
        assertRejects("[,]", containing: "expected a JSON value")
        assertRejects("[1,,2]", containing: "expected a JSON value")
    }

    func testSingleQuotes() {
        assertRejects("'x'", containing: "double quotes")
        assertRejects("{'a':1}", containing: "double quotes")
    }

    func testNonFiniteLiterals() {
        assertRejects("NaN", containing: "NaN is not valid JSON")
        assertRejects("[Infinity]", containing: "Infinity is not valid JSON")
        assertRejects("-Infinity", containing: "-Infinity is not valid JSON")
        assertRejects("nan")
    }

    func testNumberGrammar() {
        assertRejects("01", containing: "leading zeros")
        assertRejects("-01", containing: "leading zeros")
        assertRejects("00", containing: "leading zeros")
        assertRejects("[007]", containing: "leading zeros")
        assertRejects("1.", containing: "after the decimal point")
        assertRejects("1.e5", containing: "after the decimal point")
        assertRejects(".5", containing: "must start with a digit")
        assertRejects("+1", containing: "'+'")
        assertRejects("1e", containing: "exponent")
        assertRejects("1e+", containing: "exponent")
        assertRejects("0x10")
        assertRejects("1.5.3")
    }

    func testLoneSurrogates() {
        assertRejects(#""\ud800""#, containing: "lone surrogate \\uD800")
        assertRejects(#""\udc00""#, containing: "lone surrogate \\uDC00")
        assertRejects(#""\ud800\u0041""#, containing: "not a low surrogate")
        assertRejects(#""\ud800x""#, containing: "lone surrogate")
        assertRejects(#""\ud83d\ud83d""#, containing: "not a low surrogate")
    }

    func testInvalidUTF8() {
        let message = assertRejects([0x22, 0xC3, 0x28, 0x22], containing: "invalid UTF-8")
        XCTAssertEqual(message?.hasPrefix("invalid JSON at byte 1:"), true, message ?? "")
        assertRejects([0x22, 0xC0, 0xAF, 0x22], containing: "invalid UTF-8")  // overlong '/'
        assertRejects([0x22, 0xE0, 0x80, 0xAF, 0x22], containing: "invalid UTF-8")  // overlong, 3 bytes
        assertRejects([0x22, 0xED, 0xA0, 0x80, 0x22], containing: "invalid UTF-8")  // encoded surrogate
        assertRejects([0x22, 0xF4, 0x90, 0x80, 0x80, 0x22], containing: "invalid UTF-8")  // above U+10FFFF
        assertRejects([0x22, 0xFF, 0x22], containing: "invalid UTF-8")
        assertRejects([0x22, 0x80, 0x22], containing: "invalid UTF-8")  // stray continuation byte
        assertRejects([0x22, 0xE2, 0x82], containing: "cut off")
        // Invalid bytes after an escape take the slow path and must be caught there too.
        assertRejects([0x22, 0x5C, 0x6E, 0xC3, 0x28, 0x22], containing: "invalid UTF-8")
        // Invalid UTF-8 outside a string.
        assertRejects([0xC3, 0xA9])
        assertRejects([0xEF, 0xBB, 0xBF, 0x7B, 0x7D], containing: "byte order mark")
    }

    func testControlCharactersInStrings() {
        for byte in UInt8(0)..<0x20 {
            assertRejects([0x22, 0x61, byte, 0x22], containing: "control character")
            assertRejects([0x22, 0x5C, 0x74, byte, 0x22], containing: "control character")
        }
        let message = assertRejects("\"line\nbreak\"", containing: "control character 0x0A")
        XCTAssertEqual(message?.hasPrefix("invalid JSON at byte 5:"), true, message ?? "")
    }

    func testInvalidEscapes() {
        assertRejects(#""\x41""#, containing: "invalid escape sequence '\\x'")
        assertRejects(#""\U0041""#, containing: "invalid escape")
        assertRejects(#""\u00G1""#, containing: "hexadecimal")
        assertRejects(#""\'""#, containing: "invalid escape")
    }

    func testTrailingGarbage() {
        let message = assertRejects("{} x", containing: "after the end of the JSON value")
        XCTAssertEqual(message?.hasPrefix("invalid JSON at byte 3:"), true, message ?? "")
        assertRejects("[1]]", containing: "after the end")
        assertRejects("1 2", containing: "after the end")
        assertRejects("truex", containing: "after the end")
        assertRejects("{}\u{0}", containing: "byte 0x00")
    }

    func testStructuralErrors() {
        assertRejects(#"{"a" 1}"#, containing: "expected ':'")
        assertRejects(#"{"a":1 "b":2}"#, containing: "expected ',' or '}'")
        assertRejects("[1 2]", containing: "expected ',' or ']'")
        assertRejects("{1:2}", containing: "member name")
        assertRejects("[1}", containing: "expected ',' or ']'")
        assertRejects(#"{"a":1]"#, containing: "expected ',' or '}'")
        assertRejects("]", containing: "expected a JSON value")
        assertRejects("True", containing: "expected a JSON value")
    }

    // MARK: Payloads

    func testPayloadFromJSONText() throws {
        let payload = try MessageQueuePayload(jsonText: #"{"order":42,"items":["book","pen"],"price":9.5}"#)
        XCTAssertEqual(payload["order"], .int(42))
        XCTAssertEqual(payload["items"], ["book", "pen"])
        XCTAssertEqual(payload["price"], .double(9.5))
    }

    func testPayloadMustBeAnObject() {
        for (text, kind) in [("[1,2]", "an array"), (#""x""#, "a string"), ("3", "a number"), ("null", "null")] {
            XCTAssertThrowsError(try MessageQueuePayload(jsonText: text), text) { error in
                guard let error = error as? MessageQueueError else { return XCTFail("unexpected \(error)") }
                XCTAssertEqual(error.code, .invalidPayload)
                XCTAssertTrue(error.message.contains("must be a JSON object"), error.message)
                XCTAssertTrue(error.message.contains("is \(kind)"), error.message)
            }
        }
    }

    func testPayloadReportsMalformedText() {
        XCTAssertThrowsError(try MessageQueuePayload(jsonText: #"{"a":}"#)) { error in
            XCTAssertEqual((error as? MessageQueueError)?.code, .invalidPayload)
            XCTAssertEqual((error as? MessageQueueError)?.message.hasPrefix("invalid JSON at byte 5:"), true)
        }
    }
}
