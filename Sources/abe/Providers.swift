import AbstractBackend
import AbstractBackendFileSpool
import AbstractBackendInMemory
import AbstractBackendRedis

/// The providers `abe` links, in the loader's order of preference: with nothing named by
/// `QUEUE_BACKEND`, Redis when `REDIS_URL` is set, else the file spool when `ABE_SPOOL_DIR` is
/// set, else the in-memory development fallback.
enum Providers {
    static let linked: [MessageQueueProvider] = [RedisBackend.provider, FileSpoolBackend.provider, InMemoryBackend.provider]
}
