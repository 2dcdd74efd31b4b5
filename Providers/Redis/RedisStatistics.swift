import AbstractBackend

extension RedisBackend: MessageQueueInspecting {
    /// Statistics of the keys in the provider's key registry (or of `keys`): see
    /// ``MessageQueueInspecting/statistics(keys:)``.
    ///
    /// Two pipelined round trips on the command connection: `TIME`, and per key `XLEN`,
    /// `XINFO GROUPS` and the dead-letter stream's `XLEN`; then the `XPENDING` summary of every
    /// group with pending entries. Pending is the size of the group's pending entries list, which
    /// holds handed back (`nack`) entries too, and also entries a consumer fetched ahead and gave
    /// back unseen (the list does not tell them apart without reading every entry). Undelivered
    /// is the group's `lag` (Redis 7.0 and later). Ages are measured on the server's clock, which
    /// stamped the entry ids.
    nonisolated(nonsending) public func statistics(keys: [MessageQueueKey]?) async throws -> [KeyStatistics] {
        let wanted: [MessageQueueKey]
        if let keys {
            wanted = Array(Set(keys)).sorted()
        } else {
            let registry = String(decoding: names.registry, as: UTF8.self)
            let members = try await commandReplies(RESPCommand("SMEMBERS", registry))[0].elements ?? []
            wanted = members.compactMap { $0.text.flatMap { try? MessageQueueKey($0) } }.filter { !$0.isDeadLetter }.sorted()
        }

        var command = RESPCommand("TIME")
        for key in wanted {
            let stream = names.streamName(key)
            command.append(["XLEN", stream])
            command.append(["XINFO", "GROUPS", stream])
            command.append(["XLEN", names.streamName(key.deadLetterKey)])
        }
        let first = try await commandReplies(command)
        let time = first[0].elements ?? []
        let nowMilliseconds = time.count == 2 ? (time[0].integer ?? 0) * 1000 + (time[1].integer ?? 0) / 1000 : 0

        var result: [KeyStatistics] = []
        var summaries = RESPCommand()
        // (key index, group index) of each XPENDING summary asked for, in order.
        var summaryOwners: [(Int, Int)] = []
        for (index, key) in wanted.enumerated() {
            let keyReplies = Array(first[(1 + 3 * index)..<(4 + 3 * index)])
            let length = try integer(keyReplies[0], command: "XLEN")
            var groupFields: [[String: RedisValue]] = []
            // XINFO GROUPS on a missing key answers "ERR no such key": a key nobody published to.
            if keyReplies[1].errorMessage?.hasPrefix("ERR no such key") != true {
                groupFields = try array(keyReplies[1], command: "XINFO").map(\.fields)
            }
            var groups: [GroupStatistics] = []
            for fields in groupFields {
                guard let name = fields["name"]?.text, let group = try? ConsumerGroup(name) else { continue }
                let pending = Int(fields["pending"]?.integer ?? 0)
                if pending > 0 {
                    summaries.append(["XPENDING", names.streamName(key), name])
                    summaryOwners.append((index, groups.count))
                }
                groups.append(GroupStatistics(group: group, pending: pending, undelivered: fields["lag"]?.integer.map { Int($0) }, oldestPendingAge: nil))
            }
            // A dead-letter key's dead letters stay in it, so it has none of its own.
            let deadLetters = try integer(keyReplies[2], command: "XLEN")
            result.append(KeyStatistics(key: key, length: length, groups: groups, deadLetters: key.isDeadLetter ? 0 : deadLetters))
        }

        if !summaries.isEmpty {
            let second = try await commandReplies(summaries)
            for ((keyIndex, groupIndex), reply) in zip(summaryOwners, second) {
                // [count, smallest id, greatest id, consumers]; the smallest id is the oldest pending entry.
                let summary = try array(reply, command: "XPENDING")
                guard summary.count >= 2, let (milliseconds, _) = summary[1].text.flatMap(StreamEntry.parseID) else { continue }
                let age = max(0, nowMilliseconds - Int64(clamping: milliseconds))
                result[keyIndex].groups[groupIndex].oldestPendingAge = .milliseconds(age)
            }
        }
        for index in result.indices {
            result[index].groups.sort { $0.group < $1.group }
        }
        return result
    }

    /// Sends `command` on the command connection and returns its replies, error replies
    /// included; a connection failure after ``close()`` is reported as closed.
    func commandReplies(_ command: RESPCommand) async throws(MessageQueueError) -> [RedisValue] {
        guard !isClosed else { throw .closed(Self.providerName) }
        do {
            return try await commands.values(command)
        } catch {
            if error.code == .unavailable || error.code == .timeout, isClosed { throw .closed(Self.providerName) }
            throw error
        }
    }

    private func integer(_ reply: RedisValue, command: String) throws(MessageQueueError) -> Int {
        if let message = reply.errorMessage { throw RedisErrors.reply(message, command: command, configuration: configuration) }
        return Int(reply.integer ?? 0)
    }

    private func array(_ reply: RedisValue, command: String) throws(MessageQueueError) -> [RedisValue] {
        if let message = reply.errorMessage { throw RedisErrors.reply(message, command: command, configuration: configuration) }
        return reply.elements ?? []
    }
}
