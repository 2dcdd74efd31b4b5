import XCTest
@testable import AbstractBackend

/// Tests of ``JSONWriter``: exact output, and that writer → reader gives back an equal value.
final class JSONWriterTests: XCTestCase {
    private func text(_ value: JSONValue, sortedKeys: Bool = true) -> String {
        JSONWriter.string(value, sortedKeys: sortedKeys)
    }

    private func roundTrip(_ value: JSONValue, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let bytes = JSONWriter.bytes(value, sortedKeys: false)
        let reread = try JSONReader.parse(bytes)
        XCTAssertEqual(reread, value, "through \(String(decoding: bytes, as: UTF8.self))", file: file, line: line)
        return reread
    }

    // MARK: Output form

    func testCompactOutput() {
        let value: JSONValue = ["b": [1, 2.5, "x", true, false, nil], "a": ["nested": [:]], "c": []]
        XCTAssertEqual(text(value), #"{"a":{"nested":{}},"b":[1,2.5,"x",true,false,null],"c":[]}"#)
        XCTAssertEqual(value.description, text(value))
    }

    func testEmptyContainers() {
        XCTAssertEqual(text(.object([:])), "{}")
        XCTAssertEqual(text(.array([])), "[]")
    }

    func testSortedKeysUseCodePointOrder() {
        let value: JSONValue = ["b": 1, "a": 2, "B": 3, "é": 4, "aa": 5, "": 6, "😀": 7, "z": 8]
        XCTAssertEqual(text(value), #"{"":6,"B":3,"a":2,"aa":5,"b":1,"z":8,"é":4,"😀":7}"#)
    }

    func testUnsortedOutputHoldsEveryMember() throws {
        var members: [String: JSONValue] = [:]
        for index in 0..<100 { members["key\(index)"] = .int(Int64(index)) }
        let bytes = JSONWriter.bytes(.object(members), sortedKeys: false)
        XCTAssertEqual(try JSONReader.parse(bytes), .object(members))
    }

    func testIntegers() throws {
        XCTAssertEqual(text(.int(0)), "0")
        XCTAssertEqual(text(.int(7)), "7")
        XCTAssertEqual(text(.int(-7)), "-7")
        XCTAssertEqual(text(.int(10)), "10")
        XCTAssertEqual(text(.int(Int64.max)), "9223372036854775807")
        XCTAssertEqual(text(.int(Int64.min)), "-9223372036854775808")
        for value: Int64 in [.min, .min + 1, -1, 0, 1, 9, 10, 99, 100, 1_234_567_890, .max - 1, .max] {
            XCTAssertEqual(try roundTrip(.int(value)), .int(value))
            XCTAssertEqual(text(.int(value)), String(value))
        }
    }

    func testDoublesStayDoubles() throws {
        XCTAssertEqual(text(.double(1.0)), "1.0")
        XCTAssertEqual(text(.double(0.1)), "0.1")
        XCTAssertEqual(text(.double(-0.0)), "-0.0")
        XCTAssertEqual(text(.double(1e300)), "1e+300")
        XCTAssertEqual(text(.double(.leastNonzeroMagnitude)), "5e-324")
        XCTAssertEqual(text(.double(1.7976931348623157e308)), "1.7976931348623157e+308")
        XCTAssertEqual(text(.double(1e16)), "1e+16")
        XCTAssertEqual(text(.double(123456.0)), "123456.0")
    }

    func testDoublesRoundTripExactly() throws {
        let doubles: [Double] = [
            0.1, 1.0, -0.0, 0.0, 1e300, .leastNonzeroMagnitude, 1.7976931348623157e308, -1.7976931348623157e308,
            .leastNormalMagnitude, .ulpOfOne, 0.1 + 0.2, 1.0 / 3.0, 9_007_199_254_740_992, 2.5e-8, -123.456,
            Double(Int64.max), Double(Int64.min),
        ]
        for double in doubles {
            let reread = try roundTrip(.double(double))
            guard case .double(let value) = reread else { return XCTFail("\(double) came back as \(reread)") }
            XCTAssertEqual(value.bitPattern, double.bitPattern, "\(double)")
        }
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let double = Double(bitPattern: generator.next())
            guard double.isFinite else { continue }
            guard case .double(let value) = try JSONReader.parse(JSONWriter.bytes(.double(double), sortedKeys: false)) else {
                return XCTFail("\(double) did not come back as a double")
            }
            XCTAssertEqual(value.bitPattern, double.bitPattern, "\(double)")
        }
    }

    func testNonFiniteDoublesAreWrittenAsNull() {
        XCTAssertEqual(text([.double(.nan), .double(.infinity), .double(-.infinity)]), "[null,null,null]")
    }

    // MARK: Strings

    func testEscapes() {
        XCTAssertEqual(text(.string("\"\\/")), #""\"\\/""#)
        XCTAssertEqual(text(.string("\n\r\t\u{08}\u{0C}")), #""\n\r\t\b\f""#)
        XCTAssertEqual(text(.string("a\u{0}b")), #""a\u0000b""#)
        XCTAssertEqual(text(.string("\u{1}\u{1F}\u{7F}")), "\"\\u0001\\u001f\u{7F}\"")
        XCTAssertEqual(text(.string("é中😀\u{2028}")), "\"é中😀\u{2028}\"")
        XCTAssertEqual(text(.string("")), #""""#)
        XCTAssertEqual(text(["k\"ey": "v"]), #"{"k\"ey":"v"}"#)
    }

    func testEveryControlCharacterRoundTrips() throws {
        let controls = String(String.UnicodeScalarView((0..<0x20).compactMap(Unicode.Scalar.init) + [Unicode.Scalar(0x7F)]))
        XCTAssertEqual(controls.unicodeScalars.count, 33)
        let written = text(.string(controls))
        XCTAssertFalse(written.utf8.contains { $0 < 0x20 }, "raw control character in \(written)")
        XCTAssertEqual(try roundTrip(.string(controls)), .string(controls))
    }

    func testStringsRoundTrip() throws {
        let strings = [
            "",
            "plain ASCII",
            "quotes \" and backslashes \\ and \\\" mixed \"\\",
            "embedded\u{0}NUL\u{0}",
            "\u{0}",
            "line\r\nbreaks\n\r",
            "tab\tand\u{08}\u{0C}",
            "Latin é ñ ß, Greek Ω, Cyrillic Ж, CJK 中文, Hangul 한국어, Arabic العربية, Hebrew עברית",
            "emoji 😀 🎉 👍🏽",
            "ZWJ family 👨‍👩‍👧‍👦, rainbow flag 🏳️‍🌈, technologist 🧑🏾‍💻",
            "flags 🇯🇵🇺🇸🇩🇪🇺🇳 and subdivision 🏴󠁧󠁢󠁳󠁣󠁴󠁿",
            "combining e\u{301} vs precomposed é",
            "\u{2028}\u{2029}\u{FEFF}\u{FFFD}\u{FFFF}",
            String(repeating: "long string without escapes ", count: 500),
            String(repeating: "with\nescapes\"", count: 500),
        ]
        for string in strings {
            XCTAssertEqual(try roundTrip(.string(string)), .string(string))
            // Keys take the same path.
            XCTAssertEqual(try roundTrip(.object([string: .string(string)])), .object([string: .string(string)]))
        }
    }

    func testEveryUnicodePlaneRoundTrips() throws {
        // A few scalars from each of the 17 planes, including each plane's last code points.
        var scalars: [Unicode.Scalar] = []
        for plane in UInt32(0)...16 {
            for offset: UInt32 in [0x41, 0x1234, 0xABCD, 0xFFFD, 0xFFFE, 0xFFFF] {
                if let scalar = Unicode.Scalar(plane << 16 | offset) { scalars.append(scalar) }
            }
        }
        let string = String(String.UnicodeScalarView(scalars))
        XCTAssertEqual(string.unicodeScalars.count, 17 * 6)
        let reread = try roundTrip(.string(string))
        XCTAssertEqual(reread.stringValue.map { Array($0.unicodeScalars) }, scalars)

        // Also through \u escapes, including surrogate pairs for the supplementary planes.
        var escaped = "\""
        for scalar in scalars {
            for unit in String(scalar).utf16 {
                let hex = String(unit, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            }
        }
        escaped += "\""
        XCTAssertEqual(try JSONReader.parse(Array(escaped.utf8)).stringValue.map { Array($0.unicodeScalars) }, scalars)
    }

    func testExtendedGraphemeClustersSurviveByteForByte() throws {
        let family = "👨‍👩‍👧‍👦"
        let flag = "🇯🇵"
        let reread = try roundTrip(.string(family + flag))
        XCTAssertEqual(reread.stringValue?.count, 2)
        XCTAssertEqual(reread.stringValue.map { Array($0.utf8) }, Array((family + flag).utf8))
    }

    // MARK: Structure

    func testDeepNestingRoundTrips() throws {
        var value: JSONValue = "leaf"
        for level in 0..<200 {
            value = level.isMultiple(of: 2) ? .array([value]) : .object(["k": value])
        }
        XCTAssertEqual(try roundTrip(value), value)
    }

    func testMixedDocumentRoundTrips() throws {
        let value: JSONValue = [
            "ints": [.int(.min), .int(.max), 0, -1],
            "doubles": [0.1, 1.0, -0.0, 1e300, .double(.leastNonzeroMagnitude), 1.7976931348623157e308],
            "strings": ["", "a\u{0}b", "\r\n", "😀"],
            "nested": ["empty object": [:], "empty array": [], "null": nil, "flags": [true, false]],
        ]
        XCTAssertEqual(try roundTrip(value), value)
        XCTAssertEqual(try JSONReader.parse(JSONWriter.bytes(value, sortedKeys: true)), value)
    }

    func testWriteAppendsToTheBuffer() {
        var buffer = Array("prefix:".utf8)
        JSONWriter.write(["a": [1, "b"]], into: &buffer, sortedKeys: true)
        XCTAssertEqual(String(decoding: buffer, as: UTF8.self), #"prefix:{"a":[1,"b"]}"#)
    }

    func testStringAndBytesAgree() {
        let value: JSONValue = ["é": "😀", "n": [1, 2.0]]
        XCTAssertEqual(Array(JSONWriter.string(value, sortedKeys: true).utf8), JSONWriter.bytes(value, sortedKeys: true))
    }

    // MARK: Payloads

    func testPayloadJSONText() throws {
        let payload: MessageQueuePayload = ["order": 42, "price": 9.5, "note": "a\nb", "tags": ["x"]]
        XCTAssertEqual(try payload.jsonText(sortedKeys: true), #"{"note":"a\nb","order":42,"price":9.5,"tags":["x"]}"#)
        XCTAssertEqual(try MessageQueuePayload(jsonBytes: payload.jsonBytes()), payload)
        XCTAssertEqual(payload.description, try payload.jsonText(sortedKeys: true))
    }

    func testPayloadWithNonFiniteNumberIsRejected() {
        let payload: MessageQueuePayload = ["bad": .double(.nan)]
        XCTAssertThrowsError(try payload.jsonBytes()) { error in
            XCTAssertEqual((error as? MessageQueueError)?.code, .invalidPayload)
        }
    }
}
