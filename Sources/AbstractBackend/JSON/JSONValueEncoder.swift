#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Encodes `Encodable` values straight into ``JSONValue``, without a JSON text round trip.
///
/// - Integers become ``JSONValue/int(_:)``; `UInt`/`UInt64` values above `Int64.max` are an error.
/// - `Float`/`Double` become ``JSONValue/double(_:)``; NaN and infinity are an error.
/// - `Date` becomes an ISO 8601 string in UTC with milliseconds, such as `2023-11-14T22:13:20.123Z`,
///   because that reads the same in every language and log; dates are rounded to the millisecond
///   and must lie between `Date.distantPast` and the end of year 9999.
/// - `Data` becomes a base64 string, `URL` its `absoluteString`, `Decimal` a double.
/// - `nil` optionals are omitted from keyed containers (standard `encodeIfPresent`) and become
///   ``JSONValue/null`` elsewhere.
///
/// Errors are ``MessageQueueError/Code/invalidPayload`` and name the coding path, like `items[2].price`.
struct JSONValueEncoder {
    func encode<T: Encodable>(_ value: T) throws(MessageQueueError) -> JSONValue {
        let state = JSONEncodingState()
        let result: JSONValue?
        do {
            if let special = try JSONEncoderImpl.boxIfSpecial(value, codingPath: [], key: nil) {
                result = special
            } else {
                let encoder = JSONEncoderImpl(codingPath: [], state: state)
                try value.encode(to: encoder)
                result = encoder.storage?.resolved
            }
        } catch let error as MessageQueueError {
            throw error
        } catch let error as EncodingError {
            throw JSONCodingErrors.message(for: error, encoding: T.self)
        } catch {
            throw MessageQueueError(.invalidPayload, "cannot encode \(T.self): \(error)")
        }
        if let problem = state.problem {
            throw JSONCodingErrors.message(for: problem, encoding: T.self)
        }
        guard let result else {
            throw MessageQueueError(.invalidPayload, "cannot encode \(T.self): it did not encode any value")
        }
        return result
    }
}

// MARK: - Encoder

/// Misuse that `Encoder` cannot throw for (its container methods do not throw) is remembered here
/// and thrown when encoding finishes, instead of trapping like Foundation does.
private final class JSONEncodingState {
    var problem: EncodingError?

    func record(_ description: String, codingPath: [any CodingKey]) {
        guard problem == nil else { return }
        problem = .invalidValue((), EncodingError.Context(codingPath: codingPath, debugDescription: description))
    }
}

/// A value under construction. Containers are reference boxes because nested containers and super
/// encoders are filled in after they have been handed out.
private enum JSONNode {
    case value(JSONValue)
    case array(JSONArrayBox)
    case object(JSONObjectBox)
    /// A super encoder, read when the parent finishes.
    case encoder(JSONEncoderImpl)

    var resolved: JSONValue {
        switch self {
        case .value(let value): value
        case .array(let box): .array(box.elements.map(\.resolved))
        case .object(let box): .object(box.members.mapValues(\.resolved))
        // A super encoder that encoded nothing stands for an empty object, as in Foundation.
        case .encoder(let encoder): encoder.storage?.resolved ?? .object([:])
        }
    }
}

/// An array whose elements are still being encoded.
private final class JSONArrayBox {
    var elements: [JSONNode] = []
}

/// An object whose members are still being encoded.
private final class JSONObjectBox {
    var members: [String: JSONNode] = [:]
}

/// The `Encoder` for one value; a class because containers and super encoders refer back to it.
private final class JSONEncoderImpl: Encoder {
    let codingPath: [any CodingKey]
    let state: JSONEncodingState
    var storage: JSONNode?

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(codingPath: [any CodingKey], state: JSONEncodingState) {
        self.codingPath = codingPath
        self.state = state
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let box: JSONObjectBox
        switch storage {
        case .object(let existing):
            box = existing
        case nil:
            box = JSONObjectBox()
            storage = .object(box)
        default:
            state.record("a keyed container was requested after a different kind of value was encoded here", codingPath: codingPath)
            box = JSONObjectBox()
        }
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<Key>(encoder: self, box: box, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let box: JSONArrayBox
        switch storage {
        case .array(let existing):
            box = existing
        case nil:
            box = JSONArrayBox()
            storage = .array(box)
        default:
            state.record("an unkeyed container was requested after a different kind of value was encoded here", codingPath: codingPath)
            box = JSONArrayBox()
        }
        return JSONUnkeyedEncodingContainer(encoder: self, box: box, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        JSONSingleValueEncodingContainer(encoder: self)
    }

    /// Encodes a nested value at `codingPath` + `key` and returns it finished.
    func box<T: Encodable>(_ value: T, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        if let special = try Self.boxIfSpecial(value, codingPath: codingPath, key: key) { return special }
        let path = key.map { codingPath + [$0] } ?? codingPath
        let encoder = JSONEncoderImpl(codingPath: path, state: state)
        try value.encode(to: encoder)
        // A value that encoded nothing stands for an empty object, as in Foundation.
        return encoder.storage?.resolved ?? .object([:])
    }

    /// The JSON for types that are not encoded through their own `encode(to:)`: common primitives
    /// (a fast path for generic containers such as `[Int]`) and the Foundation types with a fixed
    /// JSON form. `nil` for everything else.
    static func boxIfSpecial<T: Encodable>(_ value: T, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue? {
        if T.self == String.self { return .string(value as! String) }
        if T.self == Int.self { return .int(Int64(value as! Int)) }
        if T.self == Double.self { return try JSONCodingPrimitives.box(value as! Double, codingPath: codingPath, key: key) }
        if T.self == Bool.self { return .bool(value as! Bool) }
        if T.self == Int64.self { return .int(value as! Int64) }
        if T.self == JSONValue.self { return value as? JSONValue }
        if T.self == Date.self { return try JSONCodingPrimitives.box(value as! Date, codingPath: codingPath, key: key) }
        if T.self == Data.self { return .string((value as! Data).base64EncodedString()) }
        if T.self == URL.self { return .string((value as! URL).absoluteString) }
        if T.self == Decimal.self { return try JSONCodingPrimitives.box(value as! Decimal, codingPath: codingPath, key: key) }
        return nil
    }
}

// MARK: - Containers

/// Writes members into a `JSONObjectBox`.
private struct JSONKeyedEncodingContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: JSONEncoderImpl
    let box: JSONObjectBox
    let codingPath: [any CodingKey]

    private func set(_ value: JSONValue, for key: Key) {
        box.members[key.stringValue] = .value(value)
    }

    mutating func encodeNil(forKey key: Key) throws { set(.null, for: key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), for: key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), for: key) }
    mutating func encode(_ value: Double, forKey key: Key) throws {
        set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: key), for: key)
    }
    mutating func encode(_ value: Float, forKey key: Key) throws {
        set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: key), for: key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.int(value), for: key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws {
        set(try JSONCodingPrimitives.box(UInt64(value), codingPath: codingPath, key: key), for: key)
    }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.int(Int64(value)), for: key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws {
        set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: key), for: key)
    }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        set(try encoder.box(value, codingPath: codingPath, key: key), for: key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(
        keyedBy keyType: NestedKey.Type,
        forKey key: Key
    ) -> KeyedEncodingContainer<NestedKey> {
        let nested: JSONObjectBox
        if case .object(let existing) = box.members[key.stringValue] {
            nested = existing
        } else {
            nested = JSONObjectBox()
            box.members[key.stringValue] = .object(nested)
        }
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<NestedKey>(encoder: encoder, box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested: JSONArrayBox
        if case .array(let existing) = box.members[key.stringValue] {
            nested = existing
        } else {
            nested = JSONArrayBox()
            box.members[key.stringValue] = .array(nested)
        }
        return JSONUnkeyedEncodingContainer(encoder: encoder, box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        superEncoder(for: JSONKey.super)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        superEncoder(for: key)
    }

    private func superEncoder(for key: some CodingKey) -> any Encoder {
        let sub = JSONEncoderImpl(codingPath: codingPath + [key], state: encoder.state)
        box.members[key.stringValue] = .encoder(sub)
        return sub
    }
}

/// Appends elements to a `JSONArrayBox`.
private struct JSONUnkeyedEncodingContainer: UnkeyedEncodingContainer {
    let encoder: JSONEncoderImpl
    let box: JSONArrayBox
    let codingPath: [any CodingKey]

    var count: Int { box.elements.count }

    private var nextKey: JSONKey { JSONKey(index: box.elements.count) }

    private func append(_ value: JSONValue) {
        box.elements.append(.value(value))
    }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws {
        append(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nextKey))
    }
    mutating func encode(_ value: Float) throws {
        append(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nextKey))
    }
    mutating func encode(_ value: Int) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { append(.int(value)) }
    mutating func encode(_ value: UInt) throws {
        append(try JSONCodingPrimitives.box(UInt64(value), codingPath: codingPath, key: nextKey))
    }
    mutating func encode(_ value: UInt8) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { append(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws {
        append(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nextKey))
    }
    mutating func encode<T: Encodable>(_ value: T) throws {
        append(try encoder.box(value, codingPath: codingPath, key: nextKey))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let key = nextKey
        let nested = JSONObjectBox()
        box.elements.append(.object(nested))
        return KeyedEncodingContainer(JSONKeyedEncodingContainer<NestedKey>(encoder: encoder, box: nested, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let key = nextKey
        let nested = JSONArrayBox()
        box.elements.append(.array(nested))
        return JSONUnkeyedEncodingContainer(encoder: encoder, box: nested, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder {
        let sub = JSONEncoderImpl(codingPath: codingPath + [nextKey], state: encoder.state)
        box.elements.append(.encoder(sub))
        return sub
    }
}

/// Sets the encoder's one value; a second value is an error.
private struct JSONSingleValueEncodingContainer: SingleValueEncodingContainer {
    let encoder: JSONEncoderImpl

    var codingPath: [any CodingKey] { encoder.codingPath }

    private func checkEmpty() throws {
        guard encoder.storage == nil else {
            throw EncodingError.invalidValue((), EncodingError.Context(
                codingPath: codingPath,
                debugDescription: "a single-value container was asked to encode a second value"
            ))
        }
    }

    private func set(_ value: @autoclosure () throws -> JSONValue) throws {
        try checkEmpty()
        encoder.storage = .value(try value())
    }

    mutating func encodeNil() throws { try set(.null) }
    mutating func encode(_ value: Bool) throws { try set(.bool(value)) }
    mutating func encode(_ value: String) throws { try set(.string(value)) }
    mutating func encode(_ value: Double) throws {
        try set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nil))
    }
    mutating func encode(_ value: Float) throws {
        try set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nil))
    }
    mutating func encode(_ value: Int) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: Int8) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: Int16) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: Int32) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: Int64) throws { try set(.int(value)) }
    mutating func encode(_ value: UInt) throws {
        try set(try JSONCodingPrimitives.box(UInt64(value), codingPath: codingPath, key: nil))
    }
    mutating func encode(_ value: UInt8) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: UInt16) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: UInt32) throws { try set(.int(Int64(value))) }
    mutating func encode(_ value: UInt64) throws {
        try set(try JSONCodingPrimitives.box(value, codingPath: codingPath, key: nil))
    }
    mutating func encode<T: Encodable>(_ value: T) throws {
        if let special = try JSONEncoderImpl.boxIfSpecial(value, codingPath: codingPath, key: nil) {
            try set(special)
            return
        }
        try checkEmpty()
        // Same coding path, so the value can encode straight into this encoder.
        try value.encode(to: encoder)
    }
}

// MARK: - Shared with JSONValueDecoder

/// Conversions between Swift values and JSON that the encoder and decoder must agree on.
enum JSONCodingPrimitives {
    private static func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)?) -> [any CodingKey] {
        key.map { codingPath + [$0] } ?? codingPath
    }

    static func box(_ value: Double, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: path(codingPath, key),
                debugDescription: "\(value) is not a finite number, and JSON can only hold finite numbers"
            ))
        }
        return .double(value)
    }

    static func box(_ value: Float, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        guard value.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: path(codingPath, key),
                debugDescription: "\(value) is not a finite number, and JSON can only hold finite numbers"
            ))
        }
        // Widen via the Float's shortest text so 0.1 as Float is written 0.1, not 0.10000000149011612;
        // the check keeps exactness should double rounding ever pick a different Float.
        if let shortest = Double(value.description), Float(shortest) == value {
            return .double(shortest)
        }
        return .double(Double(value))
    }

    static func box(_ value: UInt64, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        guard let integer = Int64(exactly: value) else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: path(codingPath, key),
                debugDescription: "\(value) is larger than Int64.max (\(Int64.max)), the largest integer a payload can hold; encode it as a string"
            ))
        }
        return .int(integer)
    }

    static func box(_ value: Decimal, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        // Decimal's description is plain decimal text, so Double(String) rounds it correctly.
        guard let double = Double(value.description), double.isFinite else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: path(codingPath, key),
                debugDescription: "the Decimal \(value) is not a finite number"
            ))
        }
        return .double(double)
    }

    static func box(_ value: Date, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> JSONValue {
        guard let text = dateString(value) else {
            throw EncodingError.invalidValue(value, EncodingError.Context(
                codingPath: path(codingPath, key),
                debugDescription: "the date (\(value.timeIntervalSince1970) seconds since 1970) is outside the range an ISO 8601 string can carry (Date.distantPast to the end of year 9999)"
            ))
        }
        return .string(text)
    }

    private static let dateWithFraction = Date.ISO8601FormatStyle(includingFractionalSeconds: true)
    private static let dateWithoutFraction = Date.ISO8601FormatStyle()
    private static let earliestDate = Date.distantPast.timeIntervalSince1970
    /// 10000-01-01T00:00:00Z; later years need more than four digits.
    private static let endOfDates: Double = 253_402_300_800

    /// The date as `yyyy-MM-ddTHH:mm:ss.SSSZ`, or `nil` when out of range.
    static func dateString(_ date: Date) -> String? {
        let milliseconds = (date.timeIntervalSince1970 * 1000).rounded()
        let seconds = milliseconds / 1000
        guard seconds.isFinite, seconds >= earliestDate, seconds < endOfDates else { return nil }
        // The style floors to the millisecond, and a Date made from "….123" often sits a hair below
        // .123; formatting the middle of the rounded millisecond makes it round instead.
        return dateWithFraction.format(Date(timeIntervalSince1970: (milliseconds + 0.5) / 1000))
    }

    /// Parses an ISO 8601 date-time with or without fractional seconds and with any UTC offset.
    static func date(from text: String) -> Date? {
        guard let parsed = (try? dateWithFraction.parse(text)) ?? (try? dateWithoutFraction.parse(text)) else { return nil }
        // The parser's arithmetic leaves ~1e-7 s of noise; rounding to the microsecond gives back
        // exactly the Date that was encoded, without losing sub-millisecond input from elsewhere.
        let microseconds = (parsed.timeIntervalSince1970 * 1_000_000).rounded()
        return Date(timeIntervalSince1970: microseconds / 1_000_000)
    }
}

/// Coding keys the encoder and decoder make up: array indices and `super`.
struct JSONKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    /// Whether this is an array position, written `[n]` in coding paths.
    let isIndex: Bool

    init(stringValue: String) {
        self.stringValue = stringValue
        self.intValue = nil
        self.isIndex = false
    }

    init(intValue: Int) {
        self.stringValue = String(intValue)
        self.intValue = intValue
        self.isIndex = false
    }

    init(index: Int) {
        self.stringValue = "Index \(index)"
        self.intValue = index
        self.isIndex = true
    }

    static let `super` = JSONKey(stringValue: "super")
}

/// Turns Swift's coding errors into `MessageQueueError` values that name the path, like `items[2].price`.
enum JSONCodingErrors {
    /// `items[2].price`, or `the top level` for an empty path.
    static func describe(_ codingPath: [any CodingKey]) -> String {
        guard !codingPath.isEmpty else { return "the top level" }
        var text = ""
        for key in codingPath {
            if let key = key as? JSONKey, key.isIndex, let index = key.intValue {
                text += "[\(index)]"
            } else if isIdentifier(key.stringValue) {
                text += text.isEmpty ? key.stringValue : "." + key.stringValue
            } else {
                text += "[" + JSONWriter.string(.string(key.stringValue), sortedKeys: false) + "]"
            }
        }
        return text
    }

    private static func isIdentifier(_ name: String) -> Bool {
        guard let first = name.utf8.first, !(UInt8(ascii: "0")...UInt8(ascii: "9")).contains(first) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                 UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "$"):
                true
            default:
                false
            }
        }
    }

    static func message(for error: EncodingError, encoding type: Any.Type) -> MessageQueueError {
        switch error {
        case .invalidValue(_, let context):
            MessageQueueError(.invalidPayload, "cannot encode \(type): at \(describe(context.codingPath)): \(context.debugDescription)")
        @unknown default:
            MessageQueueError(.invalidPayload, "cannot encode \(type): \(error)")
        }
    }

    static func message(for error: DecodingError, decoding type: Any.Type) -> MessageQueueError {
        switch error {
        case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
            return MessageQueueError(.invalidPayload, "cannot decode \(type): at \(describe(context.codingPath)): \(context.debugDescription)")
        case .keyNotFound(let key, let context):
            let path = describe(context.codingPath + [key])
            return MessageQueueError(.invalidPayload, "cannot decode \(type): at \(path): the key \"\(key.stringValue)\" is missing")
        @unknown default:
            return MessageQueueError(.invalidPayload, "cannot decode \(type): \(error)")
        }
    }
}
