import Foundation
import XCTest
@testable import AbstractBackend

/// Tests of ``JSONValueEncoder``, ``JSONValueDecoder`` and the `Codable` conformance of ``JSONValue``.
final class PayloadCodableTests: XCTestCase {
    // MARK: Fixtures

    enum Status: String, Codable, Equatable { case pending, shipped }
    enum Priority: Int, Codable, Equatable { case low = 1, high = 9 }

    struct Item: Codable, Equatable {
        var sku: String
        var price: Double
        var quantity: Int
    }

    struct Address: Codable, Equatable {
        var street: String
        var zip: String?
    }

    struct Order: Codable, Equatable {
        var id: Int64
        var status: Status
        var priority: Priority
        var items: [Item]
        var address: Address
        var note: String?
        var tags: [String: Int]
        var flags: [Bool]
        var discount: Float
        var small: UInt8
    }

    private let order = Order(
        id: 42,
        status: .shipped,
        priority: .high,
        items: [Item(sku: "book", price: 12.5, quantity: 1), Item(sku: "pen", price: 1.0, quantity: 3)],
        address: Address(street: "1 Main St", zip: nil),
        note: nil,
        tags: ["gift": 1, "rush": 0],
        flags: [true, false],
        discount: 0.25,
        small: 255
    )

    private func assertInvalidPayload(
        _ expression: @autoclosure () throws -> some Any,
        containing fragments: [String],
        file: StaticString = #filePath,
        line: UInt = #line
    ) {
        XCTAssertThrowsError(try expression(), file: file, line: line) { error in
            guard let error = error as? MessageQueueError else {
                return XCTFail("expected a MessageQueueError, got \(error)", file: file, line: line)
            }
            XCTAssertEqual(error.code, .invalidPayload, file: file, line: line)
            for fragment in fragments {
                XCTAssertTrue(error.message.contains(fragment), "\"\(error.message)\" does not contain \"\(fragment)\"", file: file, line: line)
            }
        }
    }

    // MARK: Encoding

    func testEncodesNestedStructsToExactJSONValues() throws {
        let payload = try MessageQueuePayload(encoding: order)
        XCTAssertEqual(payload.jsonValue, [
            "id": .int(42),
            "status": "shipped",
            "priority": .int(9),
            "items": [
                ["sku": "book", "price": .double(12.5), "quantity": .int(1)],
                ["sku": "pen", "price": .double(1.0), "quantity": .int(3)],
            ],
            "address": ["street": "1 Main St"],
            "tags": ["gift": 1, "rush": 0],
            "flags": [true, false],
            "discount": .double(0.25),
            "small": .int(255),
        ])
        // nil optionals are omitted, not written as null.
        XCTAssertNil(payload["note"])
        XCTAssertNil(payload["address"]?["zip"])
        XCTAssertEqual(try payload.jsonText(sortedKeys: true).contains(#""price":1.0"#), true)
    }

    func testRoundTripThroughPayloadAndText() throws {
        var withOptionals = order
        withOptionals.note = "leave at door"
        withOptionals.address.zip = "12345"
        for value in [order, withOptionals] {
            let payload = try MessageQueuePayload(encoding: value)
            XCTAssertEqual(try payload.decode(as: Order.self), value)
            let reread = try MessageQueuePayload(jsonText: payload.jsonText())
            XCTAssertEqual(try reread.decode(as: Order.self), value)
        }
        XCTAssertEqual(try MessageQueuePayload(encoding: withOptionals)["note"], "leave at door")
    }

    func testIntegerTypesAndLimits() throws {
        struct Integers: Codable, Equatable {
            var int8: Int8 = .min, int16: Int16 = .min, int32: Int32 = .min, int64: Int64 = .min, int: Int = .max
            var uint8: UInt8 = .max, uint16: UInt16 = .max, uint32: UInt32 = .max
            var uint64: UInt64 = UInt64(Int64.max), uint: UInt = 7
        }
        let payload = try MessageQueuePayload(encoding: Integers())
        XCTAssertEqual(payload["int64"], .int(.min))
        XCTAssertEqual(payload["uint64"], .int(.max))
        XCTAssertEqual(payload["uint32"], .int(Int64(UInt32.max)))
        XCTAssertEqual(try payload.decode(as: Integers.self), Integers())
    }

    func testUInt64AboveInt64MaxIsAnErrorNamingThePath() {
        struct Counter: Codable { var counts: [UInt64] }
        assertInvalidPayload(
            try MessageQueuePayload(encoding: Counter(counts: [1, UInt64(Int64.max) + 1])),
            containing: ["counts[1]", "9223372036854775808", "Int64.max"]
        )
        struct Wrapper: Codable { var value: UInt }
        assertInvalidPayload(try MessageQueuePayload(encoding: Wrapper(value: .max)), containing: ["value"])
    }

    func testNonFiniteNumbersAreAnErrorNamingThePath() {
        struct Measurement: Codable { var readings: [String: Double] }
        assertInvalidPayload(
            try MessageQueuePayload(encoding: Measurement(readings: ["bad": .nan])),
            containing: ["readings.bad", "nan", "finite"]
        )
        struct Single: Codable { var value: Float }
        assertInvalidPayload(try MessageQueuePayload(encoding: Single(value: .infinity)), containing: ["at value:", "inf"])
        assertInvalidPayload(try JSONValueEncoder().encode(Double.nan), containing: ["the top level"])
    }

    func testNonObjectValuesAreNotPayloads() {
        assertInvalidPayload(try MessageQueuePayload(encoding: [1, 2]), containing: ["an array", "must be a JSON object"])
        assertInvalidPayload(try MessageQueuePayload(encoding: "x"), containing: ["a string", "must be a JSON object"])
        assertInvalidPayload(try MessageQueuePayload(encoding: Status.pending), containing: ["must be a JSON object"])
    }

    func testTopLevelValuesOfAnyKind() throws {
        let encoder = JSONValueEncoder()
        XCTAssertEqual(try encoder.encode([1, 2]), [1, 2])
        XCTAssertEqual(try encoder.encode("x"), "x")
        XCTAssertEqual(try encoder.encode(Int?.none), .null)
        XCTAssertEqual(try encoder.encode([Int?.none, 3]), [nil, 3])
        XCTAssertEqual(try encoder.encode(["a": [1.5]]), ["a": [1.5]])
        XCTAssertEqual(try encoder.encode(Priority.low), .int(1))
        let decoder = JSONValueDecoder()
        XCTAssertEqual(try decoder.decode([Int?].self, from: [nil, 3]), [nil, 3])
        XCTAssertEqual(try decoder.decode(Status.self, from: "pending"), .pending)
        XCTAssertEqual(try decoder.decode(Int?.self, from: nil), nil)
    }

    func testDictionaries() throws {
        struct Maps: Codable, Equatable {
            var byName: [String: [Int]]
            var byNumber: [Int: String]
            var nested: [String: [String: Double]]
        }
        let maps = Maps(byName: ["a": [1], "b": []], byNumber: [1: "one", 20: "twenty"], nested: ["x": ["y": 0.5]])
        let payload = try MessageQueuePayload(encoding: maps)
        XCTAssertEqual(payload["byName"], ["a": [1], "b": []])
        XCTAssertEqual(payload["byNumber"], ["1": "one", "20": "twenty"])
        XCTAssertEqual(try payload.decode(as: Maps.self), maps)
    }

    // MARK: Foundation types

    func testDateIsAnISO8601StringWithMilliseconds() throws {
        struct Event: Codable, Equatable { var at: Date }
        let event = Event(at: Date(timeIntervalSince1970: 1_700_000_000.123))
        let payload = try MessageQueuePayload(encoding: event)
        XCTAssertEqual(payload["at"], "2023-11-14T22:13:20.123Z")
        XCTAssertEqual(try payload.decode(as: Event.self), event)
        XCTAssertEqual(try MessageQueuePayload(jsonText: payload.jsonText()).decode(as: Event.self), event)

        let whole = Event(at: Date(timeIntervalSince1970: 0))
        XCTAssertEqual(try MessageQueuePayload(encoding: whole)["at"], "1970-01-01T00:00:00.000Z")
        let beforeEpoch = Event(at: Date(timeIntervalSince1970: -1.5))
        XCTAssertEqual(try MessageQueuePayload(encoding: beforeEpoch)["at"], "1969-12-31T23:59:58.500Z")
        XCTAssertEqual(try MessageQueuePayload(encoding: beforeEpoch).decode(as: Event.self), beforeEpoch)

        // Sub-millisecond precision is rounded away.
        let precise = Date(timeIntervalSince1970: 1_700_000_000.123_9)
        let decoded = try MessageQueuePayload(encoding: Event(at: precise)).decode(as: Event.self)
        XCTAssertEqual(decoded.at, Date(timeIntervalSince1970: 1_700_000_000.124))
    }

    func testDateDecodingAcceptsOtherISO8601FormsAndEpochSeconds() throws {
        struct Event: Codable { var at: Date }
        let decoder = JSONValueDecoder()
        XCTAssertEqual(try decoder.decode(Event.self, from: ["at": "2023-11-14T22:13:20Z"]).at.timeIntervalSince1970, 1_700_000_000)
        XCTAssertEqual(try decoder.decode(Event.self, from: ["at": "2023-11-14T23:13:20.5+01:00"]).at.timeIntervalSince1970, 1_700_000_000.5)
        XCTAssertEqual(try decoder.decode(Event.self, from: ["at": "2023-11-14T22:13:20.123456Z"]).at.timeIntervalSince1970, 1_700_000_000.123_456)
        XCTAssertEqual(try decoder.decode(Event.self, from: ["at": 1_700_000_000]).at.timeIntervalSince1970, 1_700_000_000)
        XCTAssertEqual(try decoder.decode(Event.self, from: ["at": 1.5]).at.timeIntervalSince1970, 1.5)
        assertInvalidPayload(try decoder.decode(Event.self, from: ["at": "yesterday"]), containing: ["at at:", "ISO 8601"])
        assertInvalidPayload(try decoder.decode(Event.self, from: ["at": true]), containing: ["ISO 8601", "a Boolean"])
    }

    func testDatesOutsideFourDigitYearsAreRejected() {
        struct Event: Codable { var at: Date }
        assertInvalidPayload(try MessageQueuePayload(encoding: Event(at: Date(timeIntervalSince1970: 1e12))), containing: ["at at:", "year 9999"])
        assertInvalidPayload(try MessageQueuePayload(encoding: Event(at: Date(timeIntervalSince1970: .nan))), containing: ["at at:"])
    }

    func testDataURLAndDecimal() throws {
        struct Blob: Codable, Equatable {
            var bytes: Data
            var link: URL
            var amount: Decimal
            var empty: Data
        }
        let blob = Blob(
            bytes: Data([0, 1, 2, 0xFF]),
            link: try XCTUnwrap(URL(string: "https://example.com/a%20b?q=1#frag")),
            amount: try XCTUnwrap(Decimal(string: "12.34")),
            empty: Data()
        )
        let payload = try MessageQueuePayload(encoding: blob)
        XCTAssertEqual(payload["bytes"], "AAEC/w==")
        XCTAssertEqual(payload["link"], "https://example.com/a%20b?q=1#frag")
        XCTAssertEqual(payload["amount"], .double(12.34))
        XCTAssertEqual(payload["empty"], "")
        XCTAssertEqual(try payload.decode(as: Blob.self), blob)

        assertInvalidPayload(
            try JSONValueDecoder().decode(Blob.self, from: ["bytes": "not base64!", "link": "x", "amount": 1, "empty": ""]),
            containing: ["at bytes:", "base64"]
        )
    }

    // MARK: Decoding errors

    func testTypeMismatchNamesThePathAndBothKinds() {
        let value: JSONValue = [
            "items": [
                ["sku": "a", "price": 1.0, "quantity": 1],
                ["sku": "b", "price": 2.0, "quantity": 1],
                ["sku": "c", "price": "free", "quantity": 1],
            ],
        ]
        struct Cart: Codable { var items: [Item] }
        assertInvalidPayload(
            try JSONValueDecoder().decode(Cart.self, from: value),
            containing: ["cannot decode Cart", "at items[2].price:", "expected a number (Double) but found a string"]
        )
        // The string's contents are not echoed into the message.
        XCTAssertThrowsError(try JSONValueDecoder().decode(Cart.self, from: value)) { error in
            XCTAssertFalse((error as? MessageQueueError)?.message.contains("free") ?? true)
        }
    }

    func testMissingKeyAndNullNameThePath() {
        struct Cart: Codable { var items: [Item] }
        assertInvalidPayload(
            try JSONValueDecoder().decode(Cart.self, from: ["items": [["sku": "a", "quantity": 1]]]),
            containing: ["at items[0].price:", "\"price\" is missing"]
        )
        assertInvalidPayload(
            try JSONValueDecoder().decode(Cart.self, from: ["items": [["sku": nil, "price": 1, "quantity": 1]]]),
            containing: ["at items[0].sku:", "expected a string but found null"]
        )
        assertInvalidPayload(
            try JSONValueDecoder().decode(Cart.self, from: ["items": "none"]),
            containing: ["at items:", "expected an array but found a string"]
        )
        assertInvalidPayload(
            try JSONValueDecoder().decode(Cart.self, from: [1]),
            containing: ["at the top level:", "expected an object but found an array"]
        )
    }

    func testIntegerDecodingChecksRangeAndIntegrality() throws {
        struct Small: Codable, Equatable { var value: Int8 }
        let decoder = JSONValueDecoder()
        XCTAssertEqual(try decoder.decode(Small.self, from: ["value": -128]), Small(value: -128))
        XCTAssertEqual(try decoder.decode(Small.self, from: ["value": 2.0]), Small(value: 2))
        assertInvalidPayload(try decoder.decode(Small.self, from: ["value": 300]), containing: ["at value:", "300 does not fit in Int8"])
        assertInvalidPayload(try decoder.decode(Small.self, from: ["value": 2.5]), containing: ["at value:", "2.5", "fraction"])
        assertInvalidPayload(try decoder.decode(Small.self, from: ["value": "1"]), containing: ["expected an integer (Int8) but found a string"])
        assertInvalidPayload(try decoder.decode(UInt.self, from: -1), containing: ["does not fit in UInt"])
        XCTAssertEqual(try decoder.decode(UInt64.self, from: 1.8446744073709550e19), 18_446_744_073_709_549_568)
        assertInvalidPayload(try decoder.decode(Int64.self, from: 1e19), containing: ["does not fit in Int64"])
    }

    func testFloatingPointDecodingAcceptsBothNumberKinds() throws {
        let decoder = JSONValueDecoder()
        XCTAssertEqual(try decoder.decode(Double.self, from: 3), 3.0)
        XCTAssertEqual(try decoder.decode(Double.self, from: 0.1), 0.1)
        XCTAssertEqual(try decoder.decode(Float.self, from: 0.5), 0.5)
        XCTAssertEqual(try decoder.decode([Float].self, from: [1, 2.5]), [1, 2.5])
        // Floats are written by their own shortest text and come back exactly.
        let floats: [Float] = [0.1, 1.0 / 3.0, .greatestFiniteMagnitude, .leastNonzeroMagnitude, -0.0, 16_777_216, 3.4e38]
        let encodedFloats = try JSONValueEncoder().encode(floats)
        XCTAssertEqual(encodedFloats.arrayValue?.first, .double(0.1))
        let rereadFloats = try decoder.decode([Float].self, from: JSONReader.parse(JSONWriter.bytes(encodedFloats, sortedKeys: false)))
        XCTAssertEqual(rereadFloats.map(\.bitPattern), floats.map(\.bitPattern))
        assertInvalidPayload(try decoder.decode(Float.self, from: 1e300), containing: ["too large for Float"])
        assertInvalidPayload(try decoder.decode(Double.self, from: true), containing: ["expected a number (Double) but found a Boolean"])
        assertInvalidPayload(try decoder.decode(Bool.self, from: 1), containing: ["expected a Boolean but found a number"])
    }

    func testEnumWithUnknownRawValueIsAnError() {
        struct Shipment: Codable { var status: Status }
        assertInvalidPayload(try JSONValueDecoder().decode(Shipment.self, from: ["status": "lost"]), containing: ["at status:"])
    }

    func testArrayTooShortIsAnError() {
        struct Pair: Decodable {
            var first: Int
            var second: Int
            init(from decoder: any Decoder) throws {
                var container = try decoder.unkeyedContainer()
                first = try container.decode(Int.self)
                second = try container.decode(Int.self)
            }
        }
        assertInvalidPayload(try JSONValueDecoder().decode(Pair.self, from: [1]), containing: ["at [1]:", "only 1 elements"])
    }

    func testOddKeysArePrintedQuoted() {
        assertInvalidPayload(
            try JSONValueDecoder().decode([String: [String: Int]].self, from: ["a b": ["c.d": "x"]]),
            containing: [#"at ["a b"]["c.d"]:"#]
        )
    }

    // MARK: Custom coding

    func testNestedContainersAndSuperEncoders() throws {
        class Base: Codable {
            var id: Int
            init(id: Int) { self.id = id }
        }
        final class Derived: Base, @unchecked Sendable {
            var name: String
            var point: (x: Int, y: Int)
            init(id: Int, name: String, point: (Int, Int)) {
                self.name = name
                self.point = point
                super.init(id: id)
            }
            enum CodingKeys: String, CodingKey { case name, point, coordinates, parent }
            enum PointKeys: String, CodingKey { case x, y }
            required init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: CodingKeys.self)
                name = try container.decode(String.self, forKey: .name)
                let nested = try container.nestedContainer(keyedBy: PointKeys.self, forKey: .point)
                point = (try nested.decode(Int.self, forKey: .x), try nested.decode(Int.self, forKey: .y))
                var list = try container.nestedUnkeyedContainer(forKey: .coordinates)
                XCTAssertEqual(try list.decode(Int.self), point.x)
                try super.init(from: container.superDecoder(forKey: .parent))
            }
            override func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: CodingKeys.self)
                try container.encode(name, forKey: .name)
                var nested = container.nestedContainer(keyedBy: PointKeys.self, forKey: .point)
                try nested.encode(point.x, forKey: .x)
                try nested.encode(point.y, forKey: .y)
                var list = container.nestedUnkeyedContainer(forKey: .coordinates)
                try list.encode(point.x)
                var inner = list.nestedUnkeyedContainer()
                try inner.encode(point.y)
                try super.encode(to: container.superEncoder(forKey: .parent))
            }
        }
        let value = try JSONValueEncoder().encode(Derived(id: 7, name: "d", point: (1, 2)))
        XCTAssertEqual(value, [
            "name": "d",
            "point": ["x": 1, "y": 2],
            "coordinates": [1, [2]],
            "parent": ["id": 7],
        ])
        let decoded = try JSONValueDecoder().decode(Derived.self, from: value)
        XCTAssertEqual(decoded.id, 7)
        XCTAssertEqual(decoded.name, "d")
        XCTAssertEqual(decoded.point.y, 2)
    }

    func testDefaultSuperEncoderUsesTheSuperKey() throws {
        struct Wrapper: Codable, Equatable {
            var inner: Int
            init(inner: Int) { self.inner = inner }
            init(from decoder: any Decoder) throws {
                let container = try decoder.container(keyedBy: JSONKey.self)
                inner = try Int(from: container.superDecoder())
            }
            func encode(to encoder: any Encoder) throws {
                var container = encoder.container(keyedBy: JSONKey.self)
                try inner.encode(to: container.superEncoder())
            }
        }
        let value = try JSONValueEncoder().encode(Wrapper(inner: 5))
        XCTAssertEqual(value, ["super": 5])
        XCTAssertEqual(try JSONValueDecoder().decode(Wrapper.self, from: value), Wrapper(inner: 5))
    }

    func testMisusingAnEncoderIsAnErrorNotACrash() {
        struct Twice: Encodable {
            func encode(to encoder: any Encoder) throws {
                var container = encoder.singleValueContainer()
                try container.encode(1)
                try container.encode(2)
            }
        }
        assertInvalidPayload(try JSONValueEncoder().encode(Twice()), containing: ["second value"])

        struct Mixed: Encodable {
            func encode(to encoder: any Encoder) throws {
                var list = encoder.unkeyedContainer()
                try list.encode(1)
                var keyed = encoder.container(keyedBy: JSONKey.self)
                try keyed.encode(2, forKey: JSONKey(stringValue: "a"))
            }
        }
        assertInvalidPayload(try JSONValueEncoder().encode(["m": Mixed()]), containing: ["at m:", "keyed container"])

        struct Nothing: Encodable { func encode(to encoder: any Encoder) throws {} }
        assertInvalidPayload(try JSONValueEncoder().encode(Nothing()), containing: ["did not encode any value"])
        XCTAssertEqual(try JSONValueEncoder().encode(["n": Nothing()]), ["n": [:]])
    }

    func testErrorsThrownByTheValueArePassedOn() {
        struct Failing: Codable {
            struct Boom: Error {}
            init() {}
            init(from decoder: any Decoder) throws { throw Boom() }
            func encode(to encoder: any Encoder) throws { throw MessageQueueError(.invalidPayload, "custom reason") }
        }
        assertInvalidPayload(try JSONValueEncoder().encode(Failing()), containing: ["custom reason"])
        assertInvalidPayload(try JSONValueDecoder().decode(Failing.self, from: [:]), containing: ["cannot decode Failing", "Boom"])
    }

    // MARK: JSONValue as Codable

    func testJSONValuePropertiesKeepTheirNumberKind() throws {
        struct Envelope: Codable, Equatable { var kind: String; var body: JSONValue; var extra: [JSONValue] }
        let envelope = Envelope(kind: "k", body: ["int": 2, "double": 2.0, "null": nil], extra: [.double(1), .int(1)])
        let payload = try MessageQueuePayload(encoding: envelope)
        XCTAssertEqual(payload["body"], ["int": .int(2), "double": .double(2.0), "null": .null])
        XCTAssertEqual(try payload.decode(as: Envelope.self), envelope)
        XCTAssertEqual(try MessageQueuePayload(jsonText: payload.jsonText()).decode(as: Envelope.self), envelope)
        XCTAssertEqual(try JSONValueDecoder().decode(JSONValue.self, from: .double(2)), .double(2))
    }

    func testJSONValueWithFoundationCoders() throws {
        let text = #"{"i":1,"d":1.5,"big":1e300,"s":"x","n":null,"b":[true,false],"o":{"neg":-7}}"#
        let decoded = try JSONDecoder().decode(JSONValue.self, from: Data(text.utf8))
        XCTAssertEqual(decoded, [
            "i": .int(1), "d": .double(1.5), "big": .double(1e300), "s": "x", "n": nil,
            "b": [true, false], "o": ["neg": .int(-7)],
        ])
        let encoded = try JSONEncoder().encode(decoded)
        XCTAssertEqual(try JSONDecoder().decode(JSONValue.self, from: encoded), decoded)
        XCTAssertEqual(try JSONReader.parse(encoded), decoded)
    }
}
