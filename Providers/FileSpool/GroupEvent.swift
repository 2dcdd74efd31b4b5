/// One change to a consumer group's state, as recorded in the group's journal.
///
/// Every process that consumes the group appends events and replays the events others appended,
/// so all of them hold the same ``GroupLedger``. The binary layout (little-endian) is in
/// docs/file-spool-format.md.
enum GroupEvent: Equatable {
    /// Message `sequence` was delivered for the `deliveryCount`-th time to consumer `owner`, which
    /// holds it until `deadline` (milliseconds since the Unix epoch).
    case delivered(sequence: UInt64, deliveryCount: UInt32, deadline: Int64, owner: UInt64)
    /// Message `sequence` was acknowledged (or moved to the dead letter): it is done.
    case acknowledged(sequence: UInt64)
    /// Message `sequence` was handed back: it may be delivered again from `due` on. `reason` is
    /// the application's, kept for the dead letter.
    case released(sequence: UInt64, due: Int64, reason: String?)
    /// Message `sequence` was fetched but never reached the application (its consumer stopped):
    /// it is due again at once, and that delivery does not count.
    case returned(sequence: UInt64)

    private enum Kind: UInt8 {
        case delivered = 1
        case acknowledged = 2
        case released = 3
        case returned = 4
    }

    /// The event's bytes: a kind byte and its fields.
    var encoded: [UInt8] {
        var bytes: [UInt8] = []
        switch self {
        case let .delivered(sequence, deliveryCount, deadline, owner):
            bytes.append(Kind.delivered.rawValue)
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
            SegmentFormat.appendLittleEndian(deliveryCount, to: &bytes)
            SegmentFormat.appendLittleEndian(deadline, to: &bytes)
            SegmentFormat.appendLittleEndian(owner, to: &bytes)
        case let .acknowledged(sequence):
            bytes.append(Kind.acknowledged.rawValue)
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
        case let .released(sequence, due, reason):
            bytes.append(Kind.released.rawValue)
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
            SegmentFormat.appendLittleEndian(due, to: &bytes)
            bytes.append(contentsOf: (reason ?? "").utf8)
        case let .returned(sequence):
            bytes.append(Kind.returned.rawValue)
            SegmentFormat.appendLittleEndian(sequence, to: &bytes)
        }
        return bytes
    }

    /// Decodes an event; `nil` for bytes no version of the format wrote.
    init?(_ bytes: UnsafeRawBufferPointer) {
        guard let first = bytes.first, let kind = Kind(rawValue: first) else { return nil }
        func field<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) -> T {
            SegmentFormat.readLittleEndian(type, bytes, at: offset)
        }
        switch kind {
        case .delivered:
            guard bytes.count == 29 else { return nil }
            self = .delivered(sequence: field(UInt64.self, at: 1), deliveryCount: field(UInt32.self, at: 9), deadline: field(Int64.self, at: 13), owner: field(UInt64.self, at: 21))
        case .acknowledged:
            guard bytes.count == 9 else { return nil }
            self = .acknowledged(sequence: field(UInt64.self, at: 1))
        case .released:
            guard bytes.count >= 17 else { return nil }
            let text = String(decoding: bytes[17...], as: UTF8.self)
            self = .released(sequence: field(UInt64.self, at: 1), due: field(Int64.self, at: 9), reason: text.isEmpty ? nil : text)
        case .returned:
            guard bytes.count == 9 else { return nil }
            self = .returned(sequence: field(UInt64.self, at: 1))
        }
    }
}
