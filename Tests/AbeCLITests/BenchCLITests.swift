import Foundation
import XCTest

/// `abe bench` lines, small runs of the in-memory provider: every line says what it cost in CPU.
/// (The Redis lines, with the server's CPU, are checked in `RedisCLITests`.)
final class BenchCLITests: AbeTestCase {
    func testEveryLineReportsItsCPUTime() throws {
        let run = try abe(["bench", "--backend", "memory", "--scenario", "publish-concurrent", "--scenario", "consume", "--scenario", "baseline", "--messages", "2000"])
        let lines = try run.jsonLines()
        XCTAssertEqual(lines.map { "\($0["backend"] ?? "") \($0["scenario"] ?? "")" }, [
            "memory publish-concurrent", "memory consume", "asyncstream end-to-end", "thread-handoff publish-concurrent",
        ], run.summary)
        for line in lines {
            XCTAssertEqual(line["messages"] as? Int, 2000, run.summary)
            XCTAssertGreaterThan(line["msgs_per_sec"] as? Double ?? 0, 0, run.summary)
            XCTAssertGreaterThan(line["cpu_us_per_msg"] as? Double ?? 0, 0, run.summary)
            // No server behind the in-memory provider, but the field is there.
            XCTAssertTrue(line["server_cpu_us_per_msg"] is NSNull, run.summary)
        }
        XCTAssertTrue(run.error.contains("CPU µs/MSG"), run.summary)
    }
}
