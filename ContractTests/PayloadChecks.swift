import AbstractBackend
import XCTest

// Payloads: every JSON value comes back exactly; what JSON cannot hold, and invalid names, are refused.
extension MessageQueueContractTests {
    /// A payload holding every kind of JSON value — nested containers, Unicode from every plane,
    /// emoji sequences, NUL, CR LF, escapes, Int64 extremes, awkward doubles, empty containers
    /// and unusual member names — is received equal to what was published, with integers still
    /// integers and doubles still doubles.
    public func checkComplexJSONRoundTrip() async throws {
        try skipIfUnsupported(.complexJSONRoundTrip)
        let backend = try await freshBackend()
        let key = try key("json")
        let payload = Self.complexPayload
        try await publish([(key, payload)], to: backend)

        let received = try await receive(count: 1, from: backend, keys: [key], group: group("json"))[0].payload
        assertSameJSON(received.jsonValue, payload.jsonValue, path: "$")
        XCTAssertEqual(received["int42"], .int(42), "42 stays an integer")
        XCTAssertEqual(received["double1"], .double(1.0), "1.0 stays a double")
        XCTAssertTrue(received == payload, "the received payload differs from the published one (see the differences above)")
    }

    /// A payload with a 1 MiB string round-trips exactly.
    public func checkLargePayload() async throws {
        try skipIfUnsupported(.largePayload)
        let backend = try await freshBackend()
        let key = try key("large")
        let blob = Self.mebibyteString
        try await publish([(key, ["blob": .string(blob), "n": 1])], to: backend)

        let received = try await receive(count: 1, from: backend, keys: [key], group: group("large"))[0].payload
        XCTAssertEqual(received["n"], 1)
        guard let text = received["blob"]?.stringValue else {
            return XCTFail("the member \"blob\" did not come back as a string")
        }
        if text != blob {
            let offset = zip(text.utf8, blob.utf8).enumerated().first { $1.0 != $1.1 }?.offset ?? min(text.utf8.count, blob.utf8.count)
            XCTFail("the 1 MiB string came back as \(text.utf8.count) bytes, differing from byte \(offset) on")
        }
    }

    /// Invalid keys and group names throw `invalidKey` / `invalidGroup` naming the broken rule;
    /// a payload JSON cannot represent is refused by `publish` with `invalidPayload` and is never
    /// delivered.
    public func checkInvalidInputRejected() async throws {
        try skipIfUnsupported(.invalidInputRejected)
        let keyCases: [(String, String, String)] = [
            ("", "an empty key", "empty"),
            ("nul\u{0}key", "a key with NUL", "U+0000"),
            ("line\nbreak", "a key with a newline", "U+000A"),
            (String(repeating: "k", count: 513), "a 513-byte key", "512"),
            (String(repeating: "é", count: 256) + "k", "a 257-character, 513-byte key", "512"),
        ]
        for (name, what, rule) in keyCases {
            expectInvalid(.invalidKey, what, mentioning: rule) { () throws(MessageQueueError) in _ = try MessageQueueKey(name) }
        }
        XCTAssertNoThrow(try MessageQueueKey(String(repeating: "k", count: 512)), "512 bytes is the longest valid key")
        let groupCases: [(String, String, String)] = [
            ("", "an empty group", "empty"),
            ("a\tb", "a group with a tab", "U+0009"),
            (String(repeating: "g", count: 256), "a 256-byte group", "255"),
        ]
        for (name, what, rule) in groupCases {
            expectInvalid(.invalidGroup, what, mentioning: rule) { () throws(MessageQueueError) in _ = try ConsumerGroup(name) }
        }
        XCTAssertNoThrow(try ConsumerGroup(String(repeating: "g", count: 255)), "255 bytes is the longest valid group")

        let backend = try await freshBackend()
        let key = try key("validated")
        try await expectError(.invalidPayload, from: "publish of a payload holding NaN") {
            try await backend.publish(["value": .double(.nan)], to: key)
        }
        try await expectError(.invalidPayload, from: "publish of a payload holding infinity deep inside") {
            try await backend.publish(["outer": ["list": [1, .double(.infinity)]]], to: key)
        }
        try await expectError(.invalidPayload, from: "publish(_ batch:) starting with a NaN payload") {
            let batch: [(key: MessageQueueKey, payload: MessageQueuePayload)] = [(key, ["value": .double(-.nan)]), (key, ["seq": 99])]
            try await backend.publish(batch)
        }
        try await publishNumbered(1, to: key, on: backend)

        let listener = listen(backend, keys: [key], group: try group("validated"), ack: true)
        try await expect(listener, count: 1)
        XCTAssertEqual(listener.messages[0].payload, numbered(0), "the first message delivered is the valid one published after the rejected ones")
        try await expectNoMore(listener, than: 1, during: .milliseconds(300))
    }

    /// Fails unless `body` throws a ``MessageQueueError`` with `code` whose message contains `rule`.
    private func expectInvalid(
        _ code: MessageQueueError.Code,
        _ what: String,
        mentioning rule: String,
        file: StaticString = #filePath,
        line: UInt = #line,
        _ body: () throws(MessageQueueError) -> Void
    ) {
        do {
            try body()
            XCTFail("\(what) was accepted", file: file, line: line)
        } catch {
            XCTAssertEqual(error.code, code, "\(what): \(error)", file: file, line: line)
            XCTAssertTrue(error.message.contains(rule), "the error for \(what) should name the rule (\"\(rule)\"): \(error.message)", file: file, line: line)
        }
    }

    /// Fails with the first path at which `received` differs from `expected`.
    func assertSameJSON(_ received: JSONValue, _ expected: JSONValue, path: String, file: StaticString = #filePath, line: UInt = #line) {
        switch (received, expected) {
        case (.object(let got), .object(let want)):
            let missing = Set(want.keys).subtracting(got.keys)
            let extra = Set(got.keys).subtracting(want.keys)
            if !missing.isEmpty || !extra.isEmpty {
                XCTFail("\(path): members missing \(missing.sorted().map(\.debugDescription)), unexpected \(extra.sorted().map(\.debugDescription))", file: file, line: line)
            }
            for (name, value) in want {
                if let other = got[name] { assertSameJSON(other, value, path: "\(path)[\(name.debugDescription)]", file: file, line: line) }
            }
        case (.array(let got), .array(let want)):
            guard got.count == want.count else {
                return XCTFail("\(path): \(got.count) elements, expected \(want.count)", file: file, line: line)
            }
            for (index, (other, value)) in zip(got, want).enumerated() {
                assertSameJSON(other, value, path: "\(path)[\(index)]", file: file, line: line)
            }
        default:
            if received != expected {
                XCTFail("\(path): received \(String(reflecting: received)), expected \(String(reflecting: expected))", file: file, line: line)
            }
        }
    }

    /// A payload with every kind of value the model promises to keep exactly.
    static var complexPayload: MessageQueuePayload {
        // One scalar from each of the 17 Unicode planes (unassigned ones included: they are valid scalars).
        let planes = String(String.UnicodeScalarView((0...16).map { Unicode.Scalar(UInt32($0) << 16 | 0x1234)! }))
        let nested: JSONValue = ["level": 1, "inner": ["level": 2, "inner": ["level": 3, "list": [[], [[]], [["deep"]], [:]]]]]
        return [
            "planes": .string(planes),
            "named": "é 中文 한국어 עברית العربية 𝄞 𠀀 \u{FEFF} \u{2028}\u{2029} \u{E0001} \u{F0000} \u{10FFFD}",
            "emoji": "😀 👍🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇫🇷🇯🇵 1️⃣",
            "controls": "nul\u{0}inside \r\n \t \u{8}\u{C} \u{1F} \u{7F} \u{85}",
            "escapes": "quote \" backslash \\ slash / both \\\" </script>",
            "int42": 42,
            "int64Min": .int(.min),
            "int64Max": .int(.max),
            "zero": 0,
            "minusOne": -1,
            "double1": 1.0,
            "tenth": 0.1,
            "sum": .double(0.1 + 0.2),
            "huge": 1e300,
            "tiny": .double(.leastNonzeroMagnitude),  // 5e-324, the smallest subnormal
            "largest": .double(.greatestFiniteMagnitude),
            "smallestNormal": .double(.leastNormalMagnitude),
            "twoTo53": 9_007_199_254_740_992.0,
            "negative": -1.5e-8,
            "true": true,
            "false": false,
            "null": nil,
            "emptyObject": [:],
            "emptyArray": [],
            "": "the member name is empty",
            "ключ 🔑 キー": "member names hold any Unicode",
            "member\u{0}with NUL": "and NUL",
            "mixed": [1, 1.5, "two", nil, true, ["three": 3], [4, [5]]],
            "nested": nested,
        ]
    }

    /// Exactly 1 MiB of UTF-8: varied ASCII, then multi-byte characters at the end.
    static var mebibyteString: String {
        let tail = "é😀!"
        let alphabet = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:-_")
        let count = (1 << 20) - tail.utf8.count
        return String((0..<count).map { alphabet[($0 * 7 + $0 / 97) % alphabet.count] }) + tail
    }
}
