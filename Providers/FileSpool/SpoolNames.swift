import AbstractBackend

/// Maps keys and group names to single file-name components that stay inside the directory
/// they are joined to.
///
/// Keys and group names may contain `/`, `..`, `%`, spaces and any Unicode, and keys may be
/// longer than a file name may be, so they are never used as paths directly. A component is
/// the name's UTF-8 bytes with every byte outside `[A-Za-z0-9_.-]` written as `%XX`, plus two
/// rules:
///
/// - A leading `.` is encoded too (`%2E`), so a component is never `.`, `..` or a hidden file
///   that `ls` skips or that could be mistaken for the spool's own dot files.
/// - An encoding longer than ``maxPlainLength`` bytes keeps its first ``hashedPrefixLength``
///   bytes (never splitting a `%XX`) followed by `~` and the 64-bit FNV-1a hash of the whole
///   name in 16 lowercase hex digits. The spool stores the original name in a file inside such
///   a directory, so the name is not lost; the prefix keeps it recognisable in a listing.
///
/// For example `orders` stays `orders`, `../x` becomes `%2E.%2Fx` and `a b` becomes `a%20b`.
/// Letters keep their case, so keys that differ only by case need a case-sensitive file system
/// (ext4 is; default macOS APFS is not).
enum SpoolNames {
    /// The longest plain (reversible) component.
    ///
    /// A 512-byte key can encode to 1,536 bytes, far over ext4's 255-byte `NAME_MAX`; 200 leaves
    /// room for the spool to add a prefix or suffix (a temporary-file marker) to a component.
    static let maxPlainLength = 200

    /// How many bytes of the encoding a hashed component keeps before its `~`.
    ///
    /// With the marker and hash a hashed component is at most 177 bytes, so every component,
    /// plain or hashed, fits the same 200-byte budget.
    static let hashedPrefixLength = 160

    /// The marker between a hashed component's prefix and its hash.
    ///
    /// `~` is never left unencoded, so hashed and plain components cannot collide and
    /// ``decode(_:)`` tells them apart by looking for it.
    static let hashMarker = UInt8(ascii: "~")

    /// The directory or file name for the log of `key`.
    static func component(forKey key: MessageQueueKey) -> String {
        component(for: key.rawValue)
    }

    /// The directory or file name for the state of `group`.
    static func component(forGroup group: ConsumerGroup) -> String {
        component(for: group.name)
    }

    /// The component of a name of one or more bytes; keys and groups share one encoding.
    static func component(for name: String) -> String {
        // An empty component would name the directory it is joined to.
        precondition(!name.utf8.isEmpty, "spool names are never empty")
        var encoded: [UInt8] = []
        // The longest prefix of whole units (a kept byte or a `%XX` triple) that fits in
        // `hashedPrefixLength`, so a hashed component never ends in a split escape.
        var cut = 0
        for byte in name.utf8 {
            if encoded.count <= hashedPrefixLength { cut = encoded.count }
            if isKept(byte) && !(encoded.isEmpty && byte == UInt8(ascii: ".")) {
                encoded.append(byte)
            } else {
                encoded.append(UInt8(ascii: "%"))
                encoded.append(hexDigit(byte >> 4, uppercase: true))
                encoded.append(hexDigit(byte & 0xF, uppercase: true))
            }
        }
        if encoded.count > maxPlainLength {
            encoded.removeSubrange(cut...)
            encoded.append(hashMarker)
            let hash = fnv1a(name.utf8)
            for shift in stride(from: 60, through: 0, by: -4) {
                encoded.append(hexDigit(UInt8(truncatingIfNeeded: hash >> UInt64(shift)) & 0xF, uppercase: false))
            }
        }
        return String(decoding: encoded, as: UTF8.self)
    }

    /// The name a plain component was made from, or `nil` for a hashed component or one that
    /// ``component(for:)`` would not produce (bad escapes, lowercase hex, needless escapes,
    /// invalid UTF-8).
    ///
    /// Rejecting every non-canonical spelling keeps the mapping one-to-one: a stray directory
    /// such as `%6Frders` is not mistaken for the key `orders`.
    static func decode(_ component: String) -> String? {
        guard !component.utf8.contains(hashMarker) else { return nil }
        guard let name = PercentEncoding.decode(component[...]), !name.isEmpty,
              SpoolNames.component(for: name) == component
        else { return nil }
        return name
    }

    /// Whether `byte` may appear unencoded: the portable file-name characters of POSIX.
    private static func isKept(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }

    /// The ASCII hex digit of a value in `0...15`.
    private static func hexDigit(_ value: UInt8, uppercase: Bool) -> UInt8 {
        value < 10 ? UInt8(ascii: "0") + value : (uppercase ? UInt8(ascii: "A") : UInt8(ascii: "a")) + value - 10
    }

    /// The 64-bit FNV-1a hash: tiny, dependency-free and stable across runs and platforms,
    /// unlike `Hasher`, which is seeded per process.
    private static func fnv1a(_ bytes: some Sequence<UInt8>) -> UInt64 {
        var hash: UInt64 = 0xCBF2_9CE4_8422_2325
        for byte in bytes {
            hash = (hash ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
        }
        return hash
    }
}
