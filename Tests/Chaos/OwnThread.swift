import Foundation

/// Runs `body` on a thread of its own and returns its result: for blocking calls (hiredis,
/// file reads and writes), which must not hold a thread of Swift's cooperative pool.
func onOwnThread<T: Sendable>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread { continuation.resume(with: Result { try body() }) }
        thread.name = name
        thread.start()
    }
}

/// A failure of the harness itself (not of a scenario's checks): a worker or server that did not
/// start, a file that could not be read.
struct HarnessError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
