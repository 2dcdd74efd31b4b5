import Foundation

/// Yields the core, for up to `duration`, until `condition` holds; returns whether it did.
///
/// The threads providers own do this before they sleep or block: the next request (or reply)
/// usually comes within microseconds, and catching it awake saves a futex wake-up on each side.
/// `sched_yield` lets any other runnable thread have the core meanwhile.
package func spin(for duration: Duration, until condition: () -> Bool) -> Bool {
    let deadline = ContinuousClock.now + duration
    repeat {
        if condition() { return true }
        sched_yield()
    } while ContinuousClock.now < deadline
    return condition()
}
