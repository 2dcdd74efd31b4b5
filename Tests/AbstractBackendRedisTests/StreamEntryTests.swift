@testable import AbstractBackendRedis
import XCTest

/// Stream entry ids, read straight from reply bytes: `<milliseconds>-<sequence>`, nothing else.
final class StreamEntryTests: XCTestCase {
    func testParsesEntryIDs() {
        XCTAssertTrue(StreamEntry.parseID("0-0")! == (0, 0))
        XCTAssertTrue(StreamEntry.parseID("1733517000123-42")! == (1_733_517_000_123, 42))
        XCTAssertTrue(StreamEntry.parseID("18446744073709551615-18446744073709551615")! == (UInt64.max, UInt64.max))
    }

    func testRejectsWhatIsNotAnEntryID() {
        for text in ["", "-", "5", "5-", "-5", "5--6", "5-6-7", "a-1", "1-a", "+1-2", "1-+2", " 1-2", "1-2 ", "18446744073709551616-0", "0-18446744073709551616"] {
            XCTAssertNil(StreamEntry.parseID(text), "\"\(text)\"")
        }
    }
}
