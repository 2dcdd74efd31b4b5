import Foundation

/// Reads the CPU time a server has used so far, in seconds, or `nil` when it cannot say.
typealias ServerCPUProbe = @Sendable () async -> Double?

/// What one timed span cost: wall-clock seconds, the CPU time this process used (every thread:
/// tasks, provider threads), and the server's CPU time when a probe could read it.
///
/// CPU per message tells apart a line that is slow because the machine was busy from one whose
/// code costs more, and shows what bounds a provider that shares the cores with its server.
struct BenchTiming {
    var seconds: Double
    var cpuSeconds: Double
    var serverCPUSeconds: Double?
}

/// Times one scenario's measured span. The server is asked before the clock starts and after it
/// stops, so the round trips of the probe are not timed.
struct BenchStopwatch {
    private let started: ContinuousClock.Instant
    private let cpuAtStart: Double
    private let serverCPUAtStart: Double?
    private let serverCPU: ServerCPUProbe?

    private init(serverCPU: ServerCPUProbe?, serverCPUAtStart: Double?) {
        self.serverCPU = serverCPU
        self.serverCPUAtStart = serverCPUAtStart
        cpuAtStart = Self.processCPUSeconds()
        started = ContinuousClock.now
    }

    static func start(serverCPU: ServerCPUProbe? = nil) async -> BenchStopwatch {
        let serverAtStart = await serverCPU?()
        return BenchStopwatch(serverCPU: serverCPU, serverCPUAtStart: serverAtStart)
    }

    func stop() async -> BenchTiming {
        let seconds = (ContinuousClock.now - started).seconds
        let cpu = Self.processCPUSeconds() - cpuAtStart
        var serverSeconds: Double?
        if let serverCPUAtStart, let serverAtEnd = await serverCPU?() {
            serverSeconds = max(0, serverAtEnd - serverCPUAtStart)
        }
        return BenchTiming(seconds: seconds, cpuSeconds: cpu, serverCPUSeconds: serverSeconds)
    }

    /// User and system time of every thread of this process so far.
    static func processCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1_000_000 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }
}
