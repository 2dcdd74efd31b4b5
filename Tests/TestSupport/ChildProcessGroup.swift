import Synchronization

/// The child processes one test started, so that its `tearDown` kills and reaps every one of them
/// whatever happened in the test.
public final class ChildProcessGroup: Sendable {
    private let members = Mutex<[ChildProcess]>([])

    /// An empty group.
    public init() {}

    /// Starts `executable <arguments>` (see ``ChildProcess/init(executable:arguments:environment:)``)
    /// as a member of the group.
    public func start(_ executable: String, arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        let child = try ChildProcess(executable: executable, arguments: arguments, environment: environment)
        members.withLock { $0.append(child) }
        return child
    }

    /// Kills every member still running, waits for each to be reaped (bounded), empties the group
    /// and returns the members that could not be reaped: a test should fail on any.
    public func terminateAll() async -> [ChildProcess] {
        let all = members.withLock { members -> [ChildProcess] in
            defer { members.removeAll() }
            return members
        }
        for child in all { await child.terminate() }
        return all.filter { !$0.hasExited }
    }
}
