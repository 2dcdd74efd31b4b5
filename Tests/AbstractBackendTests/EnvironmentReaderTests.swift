import AbstractBackend
import XCTest

final class EnvironmentReaderTests: XCTestCase {
    private func message(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as MessageQueueError {
            XCTAssertEqual(error.code, .invalidConfiguration)
            return error.message
        } catch {
            XCTFail("unexpected \(error)")
            return nil
        }
    }

    func testIntegers() throws {
        let reader = EnvironmentReader(["N": " 1_000 ", "BAD": "ten", "BIG": "99", "BLANK": ""])
        XCTAssertEqual(try reader.integer("N", default: 5, in: 1...2000), 1000)
        XCTAssertEqual(try reader.integer("UNSET", default: 5, in: 1...10), 5)
        XCTAssertEqual(try reader.integer("BLANK", default: 5, in: 1...10), 5)
        XCTAssertEqual(message { _ = try reader.integer("BAD", default: 5, in: 1...10) }, "BAD=\"ten\" is not a whole number; use e.g. 5")
        XCTAssertEqual(message { _ = try reader.integer("BIG", default: 5, in: 1...10) }, "BIG=\"99\" is out of range; use 1 to 10")
    }

    func testDurations() throws {
        let reader = EnvironmentReader(["A": "250ms", "B": "1.5s", "C": "2m", "D": "30", "E": "soon", "F": "-1s", "G": "1h"])
        XCTAssertEqual(try reader.duration("A", default: .zero), .milliseconds(250))
        XCTAssertEqual(try reader.duration("B", default: .zero), .milliseconds(1500))
        XCTAssertEqual(try reader.duration("C", default: .zero), .seconds(120))
        XCTAssertEqual(try reader.duration("D", default: .zero), .seconds(30))
        XCTAssertEqual(try reader.duration("G", default: .zero), .seconds(3600))
        XCTAssertEqual(try reader.duration("UNSET", default: .seconds(7)), .seconds(7))
        XCTAssertEqual(message { _ = try reader.duration("E", default: .zero) }, "E=\"soon\" is not a duration; use e.g. 30s, 250ms, 2m or a number of seconds")
        XCTAssertNotNil(message { _ = try reader.duration("F", default: .zero) })
        XCTAssertEqual(message { _ = try reader.duration("G", default: .zero, in: .zero ... .seconds(60)) }, "G=\"1h\" is out of range; use 0s to 60s")
    }

    func testBooleansAndChoices() throws {
        let reader = EnvironmentReader(["T": "Yes", "F": "off", "X": "maybe", "MODE": "NEVER"])
        XCTAssertTrue(try reader.boolean("T", default: false))
        XCTAssertFalse(try reader.boolean("F", default: true))
        XCTAssertEqual(message { _ = try reader.boolean("X", default: true) }, "X=\"maybe\" is not a Boolean; use true or false")
        XCTAssertEqual(try reader.choice("MODE", default: "always", from: ["always", "never"]), "never")
        XCTAssertEqual(message { _ = try reader.choice("T", default: "always", from: ["always", "never"]) }, "T=\"Yes\" is not one of: always, never")
    }

    func testSecretValuesAreLeftOutOfErrors() {
        let error = EnvironmentReader([:]).invalid("REDIS_PASSWORD", "hunter2", "is too long", isSecret: true)
        XCTAssertEqual(error.message, "REDIS_PASSWORD is too long")
        XCTAssertFalse(error.description.contains("hunter2"))
    }
}
