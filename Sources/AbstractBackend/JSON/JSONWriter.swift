enum JSONWriter {
    static func bytes(_ value: JSONValue, sortedKeys: Bool) -> [UInt8] { fatalError("stub") }
    static func string(_ value: JSONValue, sortedKeys: Bool) -> String { fatalError("stub") }
}
