import Foundation
import Synchronization

/// The writers of this process that run under `ABE_SPOOL_FSYNC=never`, whose publishers return
/// before their messages are written: a normal exit (returning from `main`, `exit()`) writes what
/// they still hold before the process ends, as ``FileSpoolBackend/close()`` would. A killed or
/// crashed process runs no exit handler; that loss is the documented bound of `never`.
final class SpoolWriterRegistry: Sendable {
    static let shared = SpoolWriterRegistry()

    private let writers = Mutex<[ObjectIdentifier: SpoolWriter]>([:])

    private init() {
        atexit { SpoolWriterRegistry.shared.drainAll() }
    }

    func add(_ writer: SpoolWriter) {
        writers.withLock { $0[ObjectIdentifier(writer)] = writer }
    }

    func remove(_ writer: SpoolWriter) {
        _ = writers.withLock { $0.removeValue(forKey: ObjectIdentifier(writer)) }
    }

    private func drainAll() {
        for writer in writers.withLock({ Array($0.values) }) {
            writer.drainBeforeExit(timeout: SpoolWriter.exitDrainTime)
        }
    }
}
