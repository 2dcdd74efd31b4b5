struct JSONValueDecoder {
    func decode<T: Decodable>(_ type: T.Type, from value: JSONValue) throws(MessageQueueError) -> T { fatalError("stub") }
}
