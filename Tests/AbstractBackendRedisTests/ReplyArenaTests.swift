import CHiredis
import CHiredisReplyArena
import XCTest

/// The reply arena behind every Redis connection, driven through a real hiredis reader fed with
/// RESP text: replies must read exactly as hiredis's own objects would, across resets, block
/// boundaries and objects too large for a block.
final class ReplyArenaTests: XCTestCase {
    private var arena: OpaquePointer!
    private var reader: UnsafeMutablePointer<redisReader>!

    override func setUp() {
        arena = abe_reply_arena_create()
        reader = redisReaderCreate()
        reader.pointee.maxbuf = 0
        abe_reply_arena_attach(arena, reader)
    }

    override func tearDown() {
        redisReaderFree(reader)
        abe_reply_arena_destroy(arena)
    }

    /// Feeds `resp` and returns the one reply it holds.
    private func read(_ resp: [UInt8]) throws -> UnsafeMutablePointer<redisReply> {
        let fed = resp.withUnsafeBytes { raw in
            redisReaderFeed(reader, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
        }
        XCTAssertEqual(fed, REDIS_OK)
        var raw: UnsafeMutableRawPointer?
        XCTAssertEqual(redisReaderGetReply(reader, &raw), REDIS_OK)
        return try XCTUnwrap(raw).assumingMemoryBound(to: redisReply.self)
    }

    private func text(_ reply: UnsafeMutablePointer<redisReply>) -> String {
        String(decoding: UnsafeRawBufferPointer(start: reply.pointee.str, count: reply.pointee.len), as: UTF8.self)
    }

    private func bulk(_ text: String) -> String { "$\(text.utf8.count)\r\n\(text)\r\n" }

    func testEveryReplyTypeReadsAsHiredisBuildsIt() throws {
        let resp = "*6\r\n" + bulk("1700000000000-0") + ":-42\r\n$-1\r\n*0\r\n+OK\r\n-ERR wrong\r\n"
        let reply = try read(Array(resp.utf8))
        XCTAssertEqual(reply.pointee.type, REDIS_REPLY_ARRAY)
        XCTAssertEqual(reply.pointee.elements, 6)
        let elements = (0..<6).map { reply.pointee.element[$0]! }
        XCTAssertEqual(elements[0].pointee.type, REDIS_REPLY_STRING)
        XCTAssertEqual(text(elements[0]), "1700000000000-0")
        XCTAssertEqual(elements[0].pointee.str[elements[0].pointee.len], 0, "strings stay NUL-terminated, as hiredis's are")
        XCTAssertEqual(elements[1].pointee.type, REDIS_REPLY_INTEGER)
        XCTAssertEqual(elements[1].pointee.integer, -42)
        XCTAssertEqual(elements[2].pointee.type, REDIS_REPLY_NIL)
        XCTAssertEqual(elements[3].pointee.type, REDIS_REPLY_ARRAY)
        XCTAssertEqual(elements[3].pointee.elements, 0)
        XCTAssertEqual(elements[4].pointee.type, REDIS_REPLY_STATUS)
        XCTAssertEqual(text(elements[4]), "OK")
        XCTAssertEqual(elements[5].pointee.type, REDIS_REPLY_ERROR)
        XCTAssertEqual(text(elements[5]), "ERR wrong")
    }

    /// A stream read of many entries fills far more than the blocks the arena keeps; after each
    /// reset the next reply (different content, same shape) must read back exactly.
    func testRepliesLargerThanTheRetainedBlocksReadBackAcrossResets() throws {
        for round in 0..<3 {
            let count = 20_000
            var resp = "*\(count)\r\n"
            for index in 0..<count {
                resp += "*2\r\n" + bulk("\(round)-\(index)") + "*2\r\n" + bulk("data") + bulk("{\"n\":\(index * (round + 1))}")
            }
            let reply = try read(Array(resp.utf8))
            XCTAssertEqual(reply.pointee.elements, count)
            for index in [0, 1, count / 2, count - 1] {
                let entry = reply.pointee.element[index]!
                XCTAssertEqual(text(entry.pointee.element[0]!), "\(round)-\(index)")
                let fields = entry.pointee.element[1]!
                XCTAssertEqual(text(fields.pointee.element[0]!), "data")
                XCTAssertEqual(text(fields.pointee.element[1]!), "{\"n\":\(index * (round + 1))}")
            }
            abe_reply_arena_reset(arena)
        }
    }

    /// A payload bigger than a block gets an allocation of its own, between small objects.
    func testObjectsLargerThanABlockSitBesideSmallOnes() throws {
        let big = String(repeating: "x", count: 1 << 20)
        for round in 0..<2 {
            let reply = try read(Array(("*3\r\n" + bulk("before-\(round)") + bulk(big) + bulk("after-\(round)")).utf8))
            XCTAssertEqual(text(reply.pointee.element[0]!), "before-\(round)")
            XCTAssertEqual(reply.pointee.element[1]!.pointee.len, big.utf8.count)
            XCTAssertEqual(text(reply.pointee.element[1]!), big)
            XCTAssertEqual(text(reply.pointee.element[2]!), "after-\(round)")
            abe_reply_arena_reset(arena)
        }
    }

    /// A reply split across reads is built over several calls and must come out whole.
    func testAReplyFedInPiecesComesOutWhole() throws {
        let resp = Array(("*2\r\n" + bulk("first") + bulk(String(repeating: "y", count: 5000))).utf8)
        var offset = 0
        while resp.count - offset > 7 {
            resp[offset..<(offset + 7)].withUnsafeBytes { raw in
                _ = redisReaderFeed(reader, raw.baseAddress!.assumingMemoryBound(to: CChar.self), raw.count)
            }
            offset += 7
            var raw: UnsafeMutableRawPointer?
            XCTAssertEqual(redisReaderGetReply(reader, &raw), REDIS_OK)
            XCTAssertNil(raw, "no reply before its last byte")
        }
        let reply = try read(Array(resp[offset...]))
        XCTAssertEqual(text(reply.pointee.element[0]!), "first")
        XCTAssertEqual(reply.pointee.element[1]!.pointee.len, 5000)
    }
}
