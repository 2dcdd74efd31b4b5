#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Decodes `Decodable` values straight from ``JSONValue``; the mirror of `JSONValueEncoder`.
///
/// - Integers decode from ``JSONValue/int(_:)`` when in range, and from ``JSONValue/double(_:)``
///   only when the double is exactly integral and in range.
/// - `Float`/`Double` decode from either kind of number.
/// - `Date` decodes from an ISO 8601 string (with or without fractional seconds, any UTC offset)
///   and, for producers that send epoch times, from a number of seconds since 1970.
/// - `Data` decodes from base64, `URL` from a string, `Decimal` from a number.
/// - Strings and Booleans are never converted from other kinds.
///
/// Errors are ``MessageQueueError/Code/invalidPayload`` and name the coding path (`items[2].price`)
/// and what was expected and found. They never quote string contents, which may be sensitive.
struct JSONValueDecoder {
    func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(MessageQueueError) -> T {
        do {
            return try JSONDecoderImpl.unbox(value, as: T.self, codingPath: [], key: nil)
        } catch let error as MessageQueueError {
            throw error
        } catch let error as DecodingError {
            throw JSONCodingErrors.message(for: error, decoding: T.self)
        } catch {
            throw MessageQueueError(.invalidPayload, "cannot decode \(T.self): \(error)")
        }
    }
}

// MARK: - Decoder

/// The `Decoder` for one value. A class so it passes as `any Decoder` without copying the value.
final class JSONDecoderImpl: Decoder {
    /// The value being decoded; `JSONValue.init(from:)` reads it directly so numbers keep their kind.
    let value: JSONValue
    let codingPath: [any CodingKey]

    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(value: JSONValue, codingPath: [any CodingKey]) {
        self.value = value
        self.codingPath = codingPath
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .object(let members) = value else {
            throw Self.mismatch([String: JSONValue].self, expected: "an object", found: value, codingPath: codingPath, key: nil)
        }
        return KeyedDecodingContainer(JSONKeyedDecodingContainer<Key>(members: members, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        guard case .array(let elements) = value else {
            throw Self.mismatch([JSONValue].self, expected: "an array", found: value, codingPath: codingPath, key: nil)
        }
        return JSONUnkeyedDecodingContainer(elements: elements, codingPath: codingPath)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        JSONSingleValueDecodingContainer(value: value, codingPath: codingPath)
    }

    // MARK: Unboxing

    private static func path(_ codingPath: [any CodingKey], _ key: (any CodingKey)?) -> [any CodingKey] {
        key.map { codingPath + [$0] } ?? codingPath
    }

    /// A type mismatch, or `valueNotFound` when the value is `null` (as Foundation reports it).
    static func mismatch(
        _ type: Any.Type,
        expected: String,
        found value: JSONValue,
        codingPath: [any CodingKey],
        key: (any CodingKey)?
    ) -> DecodingError {
        let context = DecodingError.Context(
            codingPath: path(codingPath, key),
            debugDescription: "expected \(expected) but found \(value.kindDescription)"
        )
        return value.isNull ? .valueNotFound(type, context) : .typeMismatch(type, context)
    }

    private static func corrupted(_ description: String, codingPath: [any CodingKey], key: (any CodingKey)?) -> DecodingError {
        .dataCorrupted(DecodingError.Context(codingPath: path(codingPath, key), debugDescription: description))
    }

    static func unboxBool(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Bool {
        guard case .bool(let flag) = value else {
            throw mismatch(Bool.self, expected: "a Boolean", found: value, codingPath: codingPath, key: key)
        }
        return flag
    }

    static func unboxString(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> String {
        guard case .string(let string) = value else {
            throw mismatch(String.self, expected: "a string", found: value, codingPath: codingPath, key: key)
        }
        return string
    }

    static func unboxDouble(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Double {
        switch value {
        case .double(let double): return double
        case .int(let integer): return Double(integer)
        default: throw mismatch(Double.self, expected: "a number (Double)", found: value, codingPath: codingPath, key: key)
        }
    }

    static func unboxFloat(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Float {
        switch value {
        case .double(let double):
            // Check the rounded result, not the magnitude: 3.4028235e38 is above Float.greatestFiniteMagnitude
            // yet is how that very Float is written.
            let float = Float(double)
            guard float.isFinite || !double.isFinite else {
                throw corrupted("the number \(double) is too large for Float", codingPath: codingPath, key: key)
            }
            return float
        case .int(let integer):
            return Float(integer)
        default:
            throw mismatch(Float.self, expected: "a number (Float)", found: value, codingPath: codingPath, key: key)
        }
    }

    static func unboxInteger<T: FixedWidthInteger>(_ value: JSONValue, as type: T.Type, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> T {
        switch value {
        case .int(let integer):
            guard let result = T(exactly: integer) else {
                throw corrupted("the number \(integer) does not fit in \(T.self) (\(T.min)...\(T.max))", codingPath: codingPath, key: key)
            }
            return result
        case .double(let double):
            if let result = T(exactly: double) { return result }
            if !double.isFinite {
                throw corrupted("expected an integer (\(T.self)) but found \(double)", codingPath: codingPath, key: key)
            }
            if double.rounded(.towardZero) == double {
                throw corrupted("the number \(double) does not fit in \(T.self) (\(T.min)...\(T.max))", codingPath: codingPath, key: key)
            }
            throw corrupted("expected an integer (\(T.self)) but found the number \(double), which has a fraction", codingPath: codingPath, key: key)
        default:
            throw mismatch(T.self, expected: "an integer (\(T.self))", found: value, codingPath: codingPath, key: key)
        }
    }

    /// Decodes any `Decodable`, with fast paths for common primitives (generic containers such as
    /// `[Int]` land here) and the Foundation types whose JSON form `JSONValueEncoder` fixes.
    static func unbox<T: Decodable>(_ value: JSONValue, as type: T.Type, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> T {
        if T.self == String.self { return try unboxString(value, codingPath: codingPath, key: key) as! T }
        if T.self == Int.self { return try unboxInteger(value, as: Int.self, codingPath: codingPath, key: key) as! T }
        if T.self == Double.self { return try unboxDouble(value, codingPath: codingPath, key: key) as! T }
        if T.self == Bool.self { return try unboxBool(value, codingPath: codingPath, key: key) as! T }
        if T.self == Int64.self { return try unboxInteger(value, as: Int64.self, codingPath: codingPath, key: key) as! T }
        if T.self == JSONValue.self { return value as! T }
        if T.self == Date.self { return try unboxDate(value, codingPath: codingPath, key: key) as! T }
        if T.self == Data.self { return try unboxData(value, codingPath: codingPath, key: key) as! T }
        if T.self == URL.self { return try unboxURL(value, codingPath: codingPath, key: key) as! T }
        if T.self == Decimal.self { return try unboxDecimal(value, codingPath: codingPath, key: key) as! T }
        return try T(from: JSONDecoderImpl(value: value, codingPath: path(codingPath, key)))
    }

    private static func unboxDate(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Date {
        switch value {
        case .string(let text):
            guard let date = JSONCodingPrimitives.date(from: text) else {
                throw corrupted("expected an ISO 8601 date such as 2024-01-31T12:00:00.000Z but found a string in another format", codingPath: codingPath, key: key)
            }
            return date
        case .int(let seconds):
            return Date(timeIntervalSince1970: Double(seconds))
        case .double(let seconds):
            return Date(timeIntervalSince1970: seconds)
        default:
            throw mismatch(Date.self, expected: "an ISO 8601 date string", found: value, codingPath: codingPath, key: key)
        }
    }

    private static func unboxData(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Data {
        guard case .string(let text) = value else {
            throw mismatch(Data.self, expected: "a base64 string", found: value, codingPath: codingPath, key: key)
        }
        guard let data = Data(base64Encoded: text) else {
            throw corrupted("expected a base64 string but found a string that is not valid base64", codingPath: codingPath, key: key)
        }
        return data
    }

    private static func unboxURL(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> URL {
        guard case .string(let text) = value else {
            throw mismatch(URL.self, expected: "a URL string", found: value, codingPath: codingPath, key: key)
        }
        guard let url = URL(string: text) else {
            throw corrupted("expected a URL but found a string that is not a valid URL", codingPath: codingPath, key: key)
        }
        return url
    }

    private static func unboxDecimal(_ value: JSONValue, codingPath: [any CodingKey], key: (any CodingKey)?) throws -> Decimal {
        switch value {
        case .int(let integer):
            return Decimal(integer)
        case .double(let double):
            // Parse the shortest round-trip text so 0.1 becomes exactly 0.1, not Decimal(Double)'s
            // binary expansion.
            guard let decimal = Decimal(string: double.description) else {
                throw corrupted("the number \(double) is outside the range of Decimal", codingPath: codingPath, key: key)
            }
            return decimal
        default:
            throw mismatch(Decimal.self, expected: "a number (Decimal)", found: value, codingPath: codingPath, key: key)
        }
    }
}

// MARK: - Containers

/// Reads the members of a JSON object.
private struct JSONKeyedDecodingContainer<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let members: [String: JSONValue]
    let codingPath: [any CodingKey]

    var allKeys: [Key] { members.keys.compactMap { Key(stringValue: $0) } }

    func contains(_ key: Key) -> Bool { members[key.stringValue] != nil }

    private func value(for key: Key) throws -> JSONValue {
        guard let value = members[key.stringValue] else {
            throw DecodingError.keyNotFound(key, DecodingError.Context(
                codingPath: codingPath,
                debugDescription: "the key \"\(key.stringValue)\" is missing"
            ))
        }
        return value
    }

    /// The value, or `nil` when the key is missing or `null`, in one lookup.
    private func presentValue(for key: Key) -> JSONValue? {
        guard let value = members[key.stringValue], !value.isNull else { return nil }
        return value
    }

    func decodeNil(forKey key: Key) throws -> Bool { try value(for: key).isNull }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool {
        try JSONDecoderImpl.unboxBool(value(for: key), codingPath: codingPath, key: key)
    }
    func decode(_ type: String.Type, forKey key: Key) throws -> String {
        try JSONDecoderImpl.unboxString(value(for: key), codingPath: codingPath, key: key)
    }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double {
        try JSONDecoderImpl.unboxDouble(value(for: key), codingPath: codingPath, key: key)
    }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float {
        try JSONDecoderImpl.unboxFloat(value(for: key), codingPath: codingPath, key: key)
    }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try integer(key) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try integer(key) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try integer(key) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try integer(key) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try integer(key) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try integer(key) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try integer(key) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try integer(key) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try integer(key) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try integer(key) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try JSONDecoderImpl.unbox(value(for: key), as: T.self, codingPath: codingPath, key: key)
    }

    private func integer<T: FixedWidthInteger>(_ key: Key) throws -> T {
        try JSONDecoderImpl.unboxInteger(value(for: key), as: T.self, codingPath: codingPath, key: key)
    }

    // `decodeIfPresent` overrides look the key up once instead of three times (contains, decodeNil, decode).
    func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? {
        try presentValue(for: key).map { try JSONDecoderImpl.unboxBool($0, codingPath: codingPath, key: key) }
    }
    func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? {
        try presentValue(for: key).map { try JSONDecoderImpl.unboxString($0, codingPath: codingPath, key: key) }
    }
    func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? {
        try presentValue(for: key).map { try JSONDecoderImpl.unboxDouble($0, codingPath: codingPath, key: key) }
    }
    func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? {
        try presentValue(for: key).map { try JSONDecoderImpl.unboxFloat($0, codingPath: codingPath, key: key) }
    }
    func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try integerIfPresent(key) }
    func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try integerIfPresent(key) }
    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        try presentValue(for: key).map { try JSONDecoderImpl.unbox($0, as: T.self, codingPath: codingPath, key: key) }
    }

    private func integerIfPresent<T: FixedWidthInteger>(_ key: Key) throws -> T? {
        try presentValue(for: key).map { try JSONDecoderImpl.unboxInteger($0, as: T.self, codingPath: codingPath, key: key) }
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try JSONDecoderImpl(value: value(for: key), codingPath: codingPath + [key]).container(keyedBy: NestedKey.self)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONDecoderImpl(value: value(for: key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    // A missing super key decodes as null, as in Foundation, so a superclass with all-optional
    // properties still decodes.
    func superDecoder() throws -> any Decoder {
        JSONDecoderImpl(value: members[JSONKey.super.stringValue] ?? .null, codingPath: codingPath + [JSONKey.super])
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        JSONDecoderImpl(value: members[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

/// Reads the elements of a JSON array in order.
private struct JSONUnkeyedDecodingContainer: UnkeyedDecodingContainer {
    let elements: [JSONValue]
    let codingPath: [any CodingKey]
    private(set) var currentIndex = 0

    init(elements: [JSONValue], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private var currentKey: JSONKey { JSONKey(index: currentIndex) }

    /// The current element; the index only advances once it decoded, as Foundation does.
    private func current(_ type: Any.Type) throws -> JSONValue {
        guard currentIndex < elements.count else {
            throw DecodingError.valueNotFound(type, DecodingError.Context(
                codingPath: codingPath + [currentKey],
                debugDescription: "expected \(type) but the array has only \(elements.count) elements"
            ))
        }
        return elements[currentIndex]
    }

    private mutating func advance<T>(_ result: T) -> T {
        currentIndex += 1
        return result
    }

    mutating func decodeNil() throws -> Bool {
        guard try current(Never.self).isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool {
        advance(try JSONDecoderImpl.unboxBool(current(type), codingPath: codingPath, key: currentKey))
    }
    mutating func decode(_ type: String.Type) throws -> String {
        advance(try JSONDecoderImpl.unboxString(current(type), codingPath: codingPath, key: currentKey))
    }
    mutating func decode(_ type: Double.Type) throws -> Double {
        advance(try JSONDecoderImpl.unboxDouble(current(type), codingPath: codingPath, key: currentKey))
    }
    mutating func decode(_ type: Float.Type) throws -> Float {
        advance(try JSONDecoderImpl.unboxFloat(current(type), codingPath: codingPath, key: currentKey))
    }
    mutating func decode(_ type: Int.Type) throws -> Int { try integer() }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        advance(try JSONDecoderImpl.unbox(current(type), as: T.self, codingPath: codingPath, key: currentKey))
    }

    private mutating func integer<T: FixedWidthInteger>() throws -> T {
        advance(try JSONDecoderImpl.unboxInteger(current(T.self), as: T.self, codingPath: codingPath, key: currentKey))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let decoder = JSONDecoderImpl(value: try current(KeyedDecodingContainer<NestedKey>.self), codingPath: codingPath + [currentKey])
        return advance(try decoder.container(keyedBy: NestedKey.self))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let decoder = JSONDecoderImpl(value: try current((any UnkeyedDecodingContainer).self), codingPath: codingPath + [currentKey])
        return advance(try decoder.unkeyedContainer())
    }

    mutating func superDecoder() throws -> any Decoder {
        let decoder = JSONDecoderImpl(value: try current((any Decoder).self), codingPath: codingPath + [currentKey])
        return advance(decoder)
    }
}

/// Reads one value of any kind.
private struct JSONSingleValueDecodingContainer: SingleValueDecodingContainer {
    let value: JSONValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try JSONDecoderImpl.unboxBool(value, codingPath: codingPath, key: nil) }
    func decode(_ type: String.Type) throws -> String { try JSONDecoderImpl.unboxString(value, codingPath: codingPath, key: nil) }
    func decode(_ type: Double.Type) throws -> Double { try JSONDecoderImpl.unboxDouble(value, codingPath: codingPath, key: nil) }
    func decode(_ type: Float.Type) throws -> Float { try JSONDecoderImpl.unboxFloat(value, codingPath: codingPath, key: nil) }
    func decode(_ type: Int.Type) throws -> Int { try integer() }
    func decode(_ type: Int8.Type) throws -> Int8 { try integer() }
    func decode(_ type: Int16.Type) throws -> Int16 { try integer() }
    func decode(_ type: Int32.Type) throws -> Int32 { try integer() }
    func decode(_ type: Int64.Type) throws -> Int64 { try integer() }
    func decode(_ type: UInt.Type) throws -> UInt { try integer() }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try integer() }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try integer() }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try integer() }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try integer() }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try JSONDecoderImpl.unbox(value, as: T.self, codingPath: codingPath, key: nil)
    }

    private func integer<T: FixedWidthInteger>() throws -> T {
        try JSONDecoderImpl.unboxInteger(value, as: T.self, codingPath: codingPath, key: nil)
    }
}
