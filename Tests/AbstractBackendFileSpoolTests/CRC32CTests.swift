@testable import AbstractBackendFileSpool
import XCTest

/// CRC-32C against published vectors and a bit-by-bit reference, across every path of both
/// implementations (the processor's instruction and the slicing-by-8 loop): the 8-byte steps,
/// the byte tail, chaining and unaligned starts.
final class CRC32CTests: XCTestCase {
    /// Both implementations, raw-buffer form: `checksum` takes the instruction where there is one.
    private let implementations: [(name: String, checksum: (UnsafeRawBufferPointer, UInt32) -> UInt32)] = [
        ("checksum", { CRC32C.checksum($0, continuing: $1) }),
        ("softwareChecksum", { CRC32C.softwareChecksum($0, continuing: $1) }),
    ]

    /// The textbook one-bit-at-a-time CRC-32C, too slow for the spool but obviously correct.
    private func reference(_ bytes: [UInt8]) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for byte in bytes {
            crc ^= UInt32(byte)
            for _ in 0..<8 {
                crc = crc & 1 == 1 ? (crc >> 1) ^ 0x82F6_3B78 : crc >> 1
            }
        }
        return ~crc
    }

    /// `count` bytes from a fixed-seed generator, so a failure reproduces.
    private func randomBytes(_ count: Int, generator: inout some RandomNumberGenerator) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }

    func testKnownVectors() {
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testEveryCollectionOverloadAgrees() {
        let bytes = (0..<32).map { UInt8($0) }
        // A lazy map has no contiguous storage, so it takes the copying path.
        XCTAssertEqual(CRC32C.checksum((0..<32).lazy.map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum(bytes[...]), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum(Data(bytes)), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum("123456789".utf8), 0xE306_9283)
        bytes.withUnsafeBytes { XCTAssertEqual(CRC32C.checksum($0), 0x46DD_794E) }
    }

    func testEveryLengthUpTo70MatchesTheReference() {
        var generator = SplitMix64(seed: 70)
        for length in 0...70 {
            let bytes = randomBytes(length, generator: &generator)
            for (name, checksum) in implementations {
                XCTAssertEqual(bytes.withUnsafeBytes { checksum($0, 0) }, reference(bytes), "\(name), length \(length)")
            }
        }
    }

    func testTheInstructionIsUsedOnX86AndArm() {
        #if arch(x86_64) || (arch(arm64) && os(Linux))
        XCTAssertTrue(CRC32C.hardware, "this processor should have the CRC-32C instruction (SSE 4.2, or the arm64 CRC extension)")
        #endif
    }

    func testBothImplementationsAgreeOnLongAndChainedInput() {
        var generator = SplitMix64(seed: 4096)
        for _ in 0..<50 {
            let bytes = randomBytes(Int.random(in: 0...5000, using: &generator), generator: &generator)
            let seed = UInt32.random(in: 0...UInt32.max, using: &generator)
            bytes.withUnsafeBytes { raw in
                XCTAssertEqual(CRC32C.checksum(raw, continuing: seed), CRC32C.softwareChecksum(raw, continuing: seed), "\(raw.count) bytes")
            }
        }
    }

    func testChainingEqualsOneShotOnRandomSplits() {
        var generator = SplitMix64(seed: 42)
        for _ in 0..<500 {
            let count = Int.random(in: 0...300, using: &generator)
            let bytes = randomBytes(count, generator: &generator)
            var cuts = (0..<Int.random(in: 0...4, using: &generator)).map { _ in
                Int.random(in: 0...bytes.count, using: &generator)
            }
            cuts.sort()
            for (name, checksum) in implementations {
                var crc: UInt32 = 0
                var start = 0
                for cut in cuts + [bytes.count] {
                    crc = bytes[start..<cut].withUnsafeBytes { checksum($0, crc) }
                    start = cut
                }
                XCTAssertEqual(crc, reference(bytes), "\(name): \(bytes.count) bytes cut at \(cuts)")
            }
        }
    }

    func testUnalignedStartsMatchTheReference() {
        var generator = SplitMix64(seed: 7)
        let buffer = randomBytes(200, generator: &generator)
        buffer.withUnsafeBytes { whole in
            for offset in 0..<16 {
                for length in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 150] {
                    let slice = UnsafeRawBufferPointer(rebasing: whole[offset..<offset + length])
                    for (name, checksum) in implementations {
                        XCTAssertEqual(checksum(slice, 0), reference(Array(slice)), "\(name), offset \(offset), length \(length)")
                    }
                }
            }
        }
    }

    /// A small seeded generator (SplitMix64), because the system generator cannot be seeded.
    private struct SplitMix64: RandomNumberGenerator {
        private var state: UInt64

        /// A generator whose sequence is fixed by `seed`.
        init(seed: UInt64) {
            state = seed
        }

        /// The next 64 random bits.
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }
}
