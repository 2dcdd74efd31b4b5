enum JSONReader {
    static func parse(_ bytes: some Collection<UInt8>) throws(MessageQueueError) -> JSONValue { fatalError("stub") }
}
