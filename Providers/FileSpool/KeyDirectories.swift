import AbstractBackend
import Foundation
import Synchronization

/// Where each key lives under the spool root: `keys/<component>/`, holding the key's segments,
/// its groups (`groups/<component>/`) and a `key` file with the key itself, so that keys whose
/// component is hashed (``SpoolNames``) still round-trip exactly and processes can list every key.
///
/// Blocking (it touches the filesystem): call it on the spool's threads.
final class KeyDirectories: Sendable {
    let keysDirectory: String
    private let known = Mutex<[MessageQueueKey: String]>([:])

    static let keyFileName = "key"
    static let groupsDirectoryName = "groups"

    init(keysDirectory: String) {
        self.keysDirectory = keysDirectory
    }

    /// The directory of `key`, created (0700, with its `key` file) when missing.
    func directory(for key: MessageQueueKey) throws(MessageQueueError) -> String {
        if let path = known.withLock({ $0[key] }) { return path }
        let path = keysDirectory + "/" + SpoolNames.component(forKey: key)
        let keyFile = path + "/" + Self.keyFileName
        if let stored = try? String(contentsOfFile: keyFile, encoding: .utf8) {
            guard Array(stored.utf8) == Array(key.rawValue.utf8) else {
                throw MessageQueueError(.dataCorrupted, "the spool directory \(path) belongs to another key (\(stored.debugDescription)): two keys hash to the same name; use another key")
            }
        } else {
            try SpoolFile.makeDirectory(path)
            try SpoolFile.makeDirectory(path + "/" + Self.groupsDirectoryName)
            try SpoolFile.replace(directory: path, name: Self.keyFileName, bytes: Array(key.rawValue.utf8))
            try SpoolFile.syncDirectory(keysDirectory)
        }
        known.withLock { $0[key] = path }
        return path
    }

    /// The directory of `group` inside `key`'s directory.
    func directory(for group: ConsumerGroup, of key: MessageQueueKey) throws(MessageQueueError) -> String {
        try directory(for: key) + "/" + Self.groupsDirectoryName + "/" + SpoolNames.component(forGroup: group)
    }

    /// Every key in the spool, written by any process; directories without a readable `key`
    /// file (being created right now, or not the spool's) are left out.
    func allKeys() -> [MessageQueueKey] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: keysDirectory)) ?? []
        var keys: [MessageQueueKey] = []
        for name in names where !name.hasPrefix(".") {
            guard let text = try? String(contentsOfFile: keysDirectory + "/" + name + "/" + Self.keyFileName, encoding: .utf8),
                  let key = try? MessageQueueKey(text)
            else { continue }
            keys.append(key)
        }
        return keys.sorted()
    }
}
