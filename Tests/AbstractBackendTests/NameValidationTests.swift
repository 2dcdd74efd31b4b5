import AbstractBackend
import XCTest

final class NameValidationTests: XCTestCase {
    private func assertRejected<T>(
        _ make: @autoclosure () throws -> T,
        code: MessageQueueError.Code,
        mentioning fragment: String,
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try make(), file: file, line: line) { error in
            guard let error = error as? MessageQueueError else { return XCTFail("unexpected \(error)", file: file, line: line) }
            XCTAssertEqual(error.code, code, file: file, line: line)
            XCTAssertTrue(error.message.contains(fragment), error.message, file: file, line: line)
        }
    }

    func testKeyAcceptsUnicodeAndLimits() throws {
        XCTAssertEqual(try MessageQueueKey("orders").rawValue, "orders")
        XCTAssertEqual(try MessageQueueKey("ünï/cödé 🚀 ../x").rawValue, "ünï/cödé 🚀 ../x")
        XCTAssertEqual(try MessageQueueKey(String(repeating: "k", count: 512)).rawValue.utf8.count, 512)
        XCTAssertEqual(try MessageQueueKey(String(repeating: "é", count: 256)).rawValue.utf8.count, 512)
    }

    func testKeyRules() {
        assertRejected(try MessageQueueKey(""), code: .invalidKey, mentioning: "empty")
        assertRejected(try MessageQueueKey(String(repeating: "k", count: 513)), code: .invalidKey, mentioning: "513 UTF-8 bytes")
        assertRejected(try MessageQueueKey(String(repeating: "é", count: 257)), code: .invalidKey, mentioning: "the limit is 512")
        assertRejected(try MessageQueueKey("a\u{0}b"), code: .invalidKey, mentioning: "U+0000")
        assertRejected(try MessageQueueKey("a\nb"), code: .invalidKey, mentioning: "U+000A")
        assertRejected(try MessageQueueKey("tab\there"), code: .invalidKey, mentioning: "control character")
        assertRejected(try MessageQueueKey("del\u{7F}"), code: .invalidKey, mentioning: "U+007F")
        assertRejected(try MessageQueueKey("c1\u{85}"), code: .invalidKey, mentioning: "U+0085")
    }

    func testRejectedKeyIsQuotedSafely() {
        XCTAssertThrowsError(try MessageQueueKey("bad\nkey")) { error in
            XCTAssertTrue((error as! MessageQueueError).message.hasPrefix("invalid key \"bad\\nkey\""))
        }
    }

    func testDeadLetterKey() throws {
        let key = try MessageQueueKey("orders")
        XCTAssertEqual(key.deadLetterKey.rawValue, "orders:dead-letter")
        XCTAssertTrue(key.deadLetterKey.isDeadLetter)
        XCTAssertFalse(key.isDeadLetter)
        XCTAssertEqual(key.deadLetterKey.deadLetterKey, key.deadLetterKey)
        let longest = try MessageQueueKey(String(repeating: "k", count: 512))
        XCTAssertEqual(try MessageQueueKey(longest.deadLetterKey.rawValue), longest.deadLetterKey)
    }

    func testGroupRules() throws {
        XCTAssertEqual(try ConsumerGroup("billing").name, "billing")
        XCTAssertEqual(try ConsumerGroup(String(repeating: "g", count: 255)).name.count, 255)
        assertRejected(try ConsumerGroup(""), code: .invalidGroup, mentioning: "empty")
        assertRejected(try ConsumerGroup(String(repeating: "g", count: 256)), code: .invalidGroup, mentioning: "the limit is 255")
        assertRejected(try ConsumerGroup("a\tb"), code: .invalidGroup, mentioning: "U+0009")
    }

    func testDefaultGroupFromEnvironment() throws {
        XCTAssertEqual(try ConsumerGroup.configuredDefault(in: [:]), .defaultGroup)
        XCTAssertEqual(ConsumerGroup.defaultGroup.name, "default")
        XCTAssertEqual(try ConsumerGroup.configuredDefault(in: ["ABE_DEFAULT_GROUP": "workers"]).name, "workers")
        assertRejected(try ConsumerGroup.configuredDefault(in: ["ABE_DEFAULT_GROUP": ""]), code: .invalidConfiguration, mentioning: "ABE_DEFAULT_GROUP")
    }
}
