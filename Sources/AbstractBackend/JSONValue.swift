/// A JSON value that keeps integers and doubles apart.
///
/// `42` is ``int(_:)`` and comes back as `42`; `42.0` is ``double(_:)`` and comes back as `42.0`.
/// Strings may hold any Unicode, including NUL. Doubles must be finite to be published.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Whether the value can be written as JSON and read back: every number is finite and arrays
    /// and objects nest at most ``MessageQueuePayload/maxDepth`` levels deep.
    public var isValidJSON: Bool { problem(depthLeft: MessageQueuePayload.maxDepth) == nil }

    enum Problem {
        case nonFinite
        case tooDeep
    }

    /// The first reason the value cannot be JSON, walking at most `depthLeft` levels of nesting.
    func problem(depthLeft: Int) -> Problem? {
        switch self {
        case .null, .bool, .int, .string:
            return nil
        case .double(let value):
            return value.isFinite ? nil : .nonFinite
        case .array(let elements):
            guard depthLeft > 0 else { return .tooDeep }
            for element in elements {
                if let problem = element.problem(depthLeft: depthLeft - 1) { return problem }
            }
            return nil
        case .object(let members):
            guard depthLeft > 0 else { return .tooDeep }
            for value in members.values {
                if let problem = value.problem(depthLeft: depthLeft - 1) { return problem }
            }
            return nil
        }
    }

    /// The string, when this is ``string(_:)``.
    public var stringValue: String? { if case .string(let value) = self { value } else { nil } }
    /// The integer, when this is ``int(_:)``.
    public var intValue: Int64? { if case .int(let value) = self { value } else { nil } }
    /// The number as a double, when this is ``double(_:)`` or ``int(_:)``.
    public var doubleValue: Double? {
        switch self {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }
    /// The Boolean, when this is ``bool(_:)``.
    public var boolValue: Bool? { if case .bool(let value) = self { value } else { nil } }
    /// The elements, when this is ``array(_:)``.
    public var arrayValue: [JSONValue]? { if case .array(let value) = self { value } else { nil } }
    /// The members, when this is ``object(_:)``.
    public var objectValue: [String: JSONValue]? { if case .object(let value) = self { value } else { nil } }
    /// Whether this is ``null``.
    public var isNull: Bool { if case .null = self { true } else { false } }

    /// The member named `key`, when this is an object that has it.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }
}

extension JSONValue: ExpressibleByNilLiteral {
    public init(nilLiteral: ()) { self = .null }
}

extension JSONValue: ExpressibleByBooleanLiteral {
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension JSONValue: ExpressibleByIntegerLiteral {
    public init(integerLiteral value: Int64) { self = .int(value) }
}

extension JSONValue: ExpressibleByFloatLiteral {
    public init(floatLiteral value: Double) { self = .double(value) }
}

extension JSONValue: ExpressibleByStringLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
}

extension JSONValue: ExpressibleByArrayLiteral {
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
}

extension JSONValue: ExpressibleByDictionaryLiteral {
    /// A repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension JSONValue: CustomStringConvertible {
    /// The value as compact JSON text with sorted object keys.
    public var description: String { JSONWriter.string(self, sortedKeys: true) }
}
