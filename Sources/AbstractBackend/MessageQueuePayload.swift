/// The body of a message: a JSON object.
///
/// Build one from a dictionary literal, from JSON text, or from any `Encodable` value:
///
/// ```swift
/// let literal: MessageQueuePayload = ["order": 42, "items": ["book", "pen"]]
/// let encoded = try MessageQueuePayload(encoding: Order(id: 42))
/// let order = try encoded.decode(as: Order.self)
/// ```
public struct MessageQueuePayload: Sendable, Hashable {
    /// The members of the object.
    public var fields: [String: JSONValue]

    /// Creates a payload from the members of a JSON object.
    public init(_ fields: [String: JSONValue] = [:]) {
        self.fields = fields
    }

    /// The member named `key`.
    public subscript(key: String) -> JSONValue? {
        get { fields[key] }
        set { fields[key] = newValue }
    }

    /// The payload as a ``JSONValue/object(_:)``.
    public var jsonValue: JSONValue { .object(fields) }

    /// The deepest nesting a payload may have, the same limit the JSON reader enforces.
    public static let maxDepth = 512

    /// Whether the payload can be written as JSON and read back. See ``validate()``.
    public var isValidJSON: Bool { jsonValue.isValidJSON }

    /// Throws ``MessageQueueError/Code/invalidPayload`` when the payload cannot be written as JSON
    /// and read back: a NaN or infinite number, or nesting deeper than ``maxDepth``.
    ///
    /// Providers call this before accepting a payload so that every provider rejects the same payloads.
    public func validate() throws(MessageQueueError) {
        if let problem = jsonValue.problem(depthLeft: Self.maxDepth) { throw Self.error(problem) }
    }

    private static func error(_ problem: JSONValue.Problem) -> MessageQueueError {
        switch problem {
        case .nonFinite:
            MessageQueueError(.invalidPayload, "the payload contains a NaN or infinite number, which JSON cannot represent")
        case .tooDeep:
            MessageQueueError(.invalidPayload, "the payload nests arrays and objects more than \(Self.maxDepth) levels deep")
        }
    }
}

extension MessageQueuePayload: ExpressibleByDictionaryLiteral {
    /// A repeated key keeps its last value.
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.init(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}

extension MessageQueuePayload: CustomStringConvertible {
    /// The payload as compact JSON text with sorted keys.
    public var description: String { jsonValue.description }
}

// MARK: - JSON text

extension MessageQueuePayload {
    /// Parses a payload from UTF-8 JSON text that holds one object.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` with the byte offset of the problem when the
    /// text is not JSON, or when it is JSON but not an object.
    public init(jsonBytes: some Collection<UInt8>) throws(MessageQueueError) {
        let value = try JSONReader.parse(jsonBytes)
        guard case .object(let fields) = value else {
            throw MessageQueueError(.invalidPayload, "the JSON text is \(value.kindDescription), but a payload must be a JSON object")
        }
        self.init(fields)
    }

    /// Parses a payload from JSON text that holds one object.
    public init(jsonText: String) throws(MessageQueueError) {
        try self.init(jsonBytes: jsonText.utf8)
    }

    /// The payload as compact UTF-8 JSON text.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` when the payload does not pass ``validate()``.
    public func jsonBytes(sortedKeys: Bool = false) throws(MessageQueueError) -> [UInt8] {
        var buffer: [UInt8] = []
        buffer.reserveCapacity(256)
        try appendJSON(to: &buffer, sortedKeys: sortedKeys)
        return buffer
    }

    /// Appends the payload as compact UTF-8 JSON text to `buffer`, for providers that frame the
    /// text themselves (a wire protocol, a record format) and want no intermediate copy.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` when the payload does not pass
    /// ``validate()``; `buffer` is then unchanged.
    public func appendJSON(to buffer: inout [UInt8], sortedKeys: Bool = false) throws(MessageQueueError) {
        // Validated while written: one walk of the tree, not two.
        let start = buffer.count
        if let problem = JSONWriter.writeValidating(jsonValue, into: &buffer, sortedKeys: sortedKeys, depthLimit: Self.maxDepth) {
            buffer.removeSubrange(start...)
            throw Self.error(problem)
        }
    }

    /// The payload as compact JSON text.
    public func jsonText(sortedKeys: Bool = false) throws(MessageQueueError) -> String {
        String(decoding: try jsonBytes(sortedKeys: sortedKeys), as: UTF8.self)
    }
}

// MARK: - Codable

extension MessageQueuePayload {
    /// Encodes an application value into a payload.
    ///
    /// The value must encode as a keyed container (a struct or class with `Codable` synthesis, or a
    /// dictionary keyed by strings); anything else throws ``MessageQueueError/Code/invalidPayload``.
    public init(encoding value: some Encodable) throws(MessageQueueError) {
        let encoded = try JSONValueEncoder().encode(value)
        guard case .object(let fields) = encoded else {
            throw MessageQueueError(.invalidPayload, "\(type(of: value)) encodes as \(encoded.kindDescription), but a payload must be a JSON object; wrap it in a struct")
        }
        self.init(fields)
    }

    /// Decodes an application value from the payload.
    ///
    /// Throws ``MessageQueueError/Code/invalidPayload`` naming the coding path when the payload does
    /// not match the type.
    public func decode<Value: Decodable>(as type: Value.Type = Value.self) throws(MessageQueueError) -> Value {
        try JSONValueDecoder().decode(type, from: jsonValue)
    }
}

extension MessageQueuePayload: Codable {
    /// Decodes a JSON object, so a payload can be a property of an application type.
    public init(from decoder: any Decoder) throws {
        guard case .object(let fields) = try JSONValue(from: decoder) else {
            throw DecodingError.typeMismatch(MessageQueuePayload.self, DecodingError.Context(
                codingPath: decoder.codingPath, debugDescription: "a payload must be a JSON object"
            ))
        }
        self.init(fields)
    }

    public func encode(to encoder: any Encoder) throws {
        try jsonValue.encode(to: encoder)
    }
}

extension JSONValue {
    /// "an object", "an array", … for error messages.
    var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool: "a Boolean"
        case .int, .double: "a number"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }
}
