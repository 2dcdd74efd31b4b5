import AbstractBackend
@testable import AbstractBackendRedis
import XCTest

/// The `XADD` fast path writes the payload's JSON first and its length header afterwards; it must
/// give exactly the bytes of the plain argument encoding, whatever the number of digits.
final class RESPCommandTests: XCTestCase {
    private let stream = Array("orders".utf8)

    /// The plain encoding of `XADD <stream> * data <json>`.
    private func expected(_ json: [UInt8], maxLength: Int? = nil) -> [UInt8] {
        var arguments: [[UInt8]] = [Array("XADD".utf8), stream]
        if let maxLength { arguments += [Array("MAXLEN".utf8), Array("~".utf8), Array(String(maxLength).utf8)] }
        arguments += [Array("*".utf8), Array("data".utf8), json]
        var command = RESPCommand()
        command.append(arguments)
        return command.bytes
    }

    func testXADDMatchesThePlainEncodingAtEveryDigitBoundary() throws {
        let prefix = RESPCommand.xaddPrefix(stream: stream, maxLength: nil)
        // `{"b":""}` is 8 bytes; the body makes the JSON 9, 10, 99, 100, … bytes long.
        for length in [9, 10, 99, 100, 999, 1000, 9999, 10000, 99999, 100_000, 1_000_000] {
            let payload: MessageQueuePayload = ["b": .string(String(repeating: "x", count: length - 8))]
            let json = try payload.jsonBytes()
            XCTAssertEqual(json.count, length)
            var command = RESPCommand()
            try command.appendXADD(prefix: prefix, payload: payload)
            XCTAssertEqual(command.count, 1)
            XCTAssertEqual(command.bytes, expected(json), "JSON of \(length) bytes")
        }
    }

    func testSeveralXADDsShareOneBuffer() throws {
        let prefix = RESPCommand.xaddPrefix(stream: stream, maxLength: 1000)
        let payloads: [MessageQueuePayload] = [["n": 1], ["text": "é\u{0}\"\n"], ["n": .array(Array(repeating: 7, count: 300))]]
        var command = RESPCommand()
        var plain: [UInt8] = []
        for payload in payloads {
            try command.appendXADD(prefix: prefix, payload: payload)
            plain += expected(try payload.jsonBytes(), maxLength: 1000)
        }
        XCTAssertEqual(command.count, payloads.count)
        XCTAssertEqual(command.bytes, plain)
    }

    func testRejectedPayloadAppendsNothing() throws {
        let prefix = RESPCommand.xaddPrefix(stream: stream, maxLength: nil)
        var command = RESPCommand()
        try command.appendXADD(prefix: prefix, payload: ["n": 1])
        let before = command.bytes
        XCTAssertThrowsError(try command.appendXADD(prefix: prefix, payload: ["n": .double(.infinity)])) { error in
            XCTAssertEqual((error as? MessageQueueError)?.code, .invalidPayload)
        }
        XCTAssertEqual(command.bytes, before)
        XCTAssertEqual(command.count, 1)
    }
}
