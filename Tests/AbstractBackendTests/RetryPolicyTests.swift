@testable import AbstractBackend
import XCTest

final class RetryPolicyTests: XCTestCase {
    func testDelaysGrowByTheMultiplierUpToTheCap() {
        let policy = RetryPolicy(initialDelay: .milliseconds(100), multiplier: 3, maxDelay: .seconds(2), jitter: 0)
        XCTAssertEqual(policy.delay(afterDelivery: 1), .milliseconds(100))
        XCTAssertEqual(policy.delay(afterDelivery: 2), .milliseconds(300))
        XCTAssertEqual(policy.delay(afterDelivery: 3), .milliseconds(900))
        XCTAssertEqual(policy.delay(afterDelivery: 4), .seconds(2), "capped")
        XCTAssertEqual(policy.delay(afterDelivery: 10_000), .seconds(2), "a huge exponent stays at the cap")
        XCTAssertEqual(policy.delay(afterDelivery: 0), .milliseconds(100), "counts below 1 count as the first delivery")
    }

    func testJitterStaysWithinItsFractionAndTheCap() {
        let policy = RetryPolicy(initialDelay: .seconds(1), multiplier: 2, maxDelay: .seconds(3), jitter: 0.25)
        XCTAssertEqual(policy.delay(afterDelivery: 1, random: -1), .milliseconds(750))
        XCTAssertEqual(policy.delay(afterDelivery: 1, random: 1), .milliseconds(1250))
        XCTAssertEqual(policy.delay(afterDelivery: 2, random: 1), .milliseconds(2500))
        XCTAssertEqual(policy.delay(afterDelivery: 3, random: 1), .seconds(3), "jitter never goes past the cap")
        for _ in 0..<200 {
            let delay = policy.delay(afterDelivery: 1)
            XCTAssertGreaterThanOrEqual(delay, .milliseconds(750))
            XCTAssertLessThanOrEqual(delay, .milliseconds(1250))
        }
    }

    func testOutOfRangeSettingsAreClamped() {
        let policy = RetryPolicy(initialDelay: .seconds(-1), multiplier: 0.5, maxDelay: .seconds(-5), jitter: 7)
        XCTAssertEqual(policy.initialDelay, .zero)
        XCTAssertEqual(policy.multiplier, 1)
        XCTAssertEqual(policy.maxDelay, .zero)
        XCTAssertEqual(policy.jitter, 1)
        XCTAssertEqual(RetryPolicy(multiplier: .nan, jitter: .infinity).multiplier, 1)
        XCTAssertEqual(RetryPolicy.immediate.delay(afterDelivery: 5), .zero)
    }

    func testRetryAfterKeepsItsDelayAndReason() {
        let retry = RetryAfter(.seconds(5), reason: "rate limited")
        XCTAssertEqual(retry.delay, .seconds(5))
        XCTAssertEqual(retry.description, "retry after 5s: rate limited")
        XCTAssertEqual(RetryAfter(.seconds(-2), reason: "x").delay, .zero)
    }
}
