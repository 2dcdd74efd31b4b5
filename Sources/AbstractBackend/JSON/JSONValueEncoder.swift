struct JSONValueEncoder {
    func encode<T: Encodable>(_ value: T) throws(MessageQueueError) -> JSONValue { fatalError("stub") }
}
