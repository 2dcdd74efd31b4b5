import XCTest
@testable import AbstractBackend

/// Tests of ``JSONStringScan``, the word-at-a-time search the reader and the writer share: every
/// byte value at every offset of a word, against a byte-by-byte reference.
final class JSONStringScanTests: XCTestCase {
    private func reference(_ bytes: [UInt8], from start: Int, stopAtNonASCII: Bool) -> Int {
        for index in start..<bytes.count {
            let byte = bytes[index]
            if byte < 0x20 || byte == 0x22 || byte == 0x5C || (stopAtNonASCII && byte >= 0x80) { return index }
        }
        return bytes.count
    }

    private func scan(_ bytes: [UInt8], from start: Int, stopAtNonASCII: Bool) -> Int {
        bytes.withUnsafeBufferPointer { JSONStringScan.endOfPlainRun(in: $0, from: start, stopAtNonASCII: stopAtNonASCII) }
    }

    func testEveryByteValueAtEveryOffset() {
        for length in 1...19 {
            for position in 0..<length {
                for value in 0...255 {
                    var bytes = [UInt8](repeating: UInt8(ascii: "x"), count: length)
                    bytes[position] = UInt8(value)
                    for stop in [true, false] {
                        XCTAssertEqual(
                            scan(bytes, from: 0, stopAtNonASCII: stop), reference(bytes, from: 0, stopAtNonASCII: stop),
                            "byte \(value) at \(position) of \(length), stopAtNonASCII \(stop)"
                        )
                    }
                }
            }
        }
    }

    /// A match after bytes that make the masks borrow (0x00, 0x21, 0x5B, 0x80…) is still found
    /// at its own place, and a later match never hides an earlier one.
    func testRandomBuffersAgreeWithTheReference() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [UInt8] = [0x00, 0x01, 0x1F, 0x20, 0x21, 0x22, 0x23, 0x5B, 0x5C, 0x5D, 0x7F, 0x80, 0xA2, 0xDC, 0xFF, 0x78]
        for _ in 0..<20_000 {
            let length = Int.random(in: 0...40, using: &generator)
            let bytes = (0..<length).map { _ in
                Bool.random(using: &generator) ? UInt8(ascii: "x") : alphabet.randomElement(using: &generator)!
            }
            let start = length == 0 ? 0 : Int.random(in: 0...length, using: &generator)
            for stop in [true, false] {
                XCTAssertEqual(scan(bytes, from: start, stopAtNonASCII: stop), reference(bytes, from: start, stopAtNonASCII: stop), "\(bytes) from \(start)")
            }
        }
    }

    func testEmptyAndExhaustedInput() {
        XCTAssertEqual(scan([], from: 0, stopAtNonASCII: true), 0)
        XCTAssertEqual(scan(Array("plain text, no specials".utf8), from: 0, stopAtNonASCII: true), 23)
        XCTAssertEqual(scan(Array("abc".utf8), from: 3, stopAtNonASCII: false), 3)
    }

    /// Strings with escapes and non-ASCII characters at every offset survive the writer and the
    /// reader, which both skip plain runs with the scan.
    func testStringsWithSpecialsAtEveryOffsetRoundTrip() throws {
        for special in ["\"", "\\", "\n", "\u{01}", "é", "€", "😀"] {
            for offset in 0...20 {
                let text = String(repeating: "a", count: offset) + special + String(repeating: "b", count: 20 - offset) + special
                let bytes = JSONWriter.bytes(.string(text), sortedKeys: false)
                XCTAssertEqual(try JSONReader.parse(bytes), .string(text), "through \(String(decoding: bytes, as: UTF8.self))")
            }
        }
    }
}
