import AbstractBackend
import AbstractBackendInMemory
import AbstractBackendRedis

/// The providers `abe` links, in the loader's order of preference.
enum Providers {
    static let linked: [MessageQueueProvider] = [RedisBackend.provider, InMemoryBackend.provider]
}
