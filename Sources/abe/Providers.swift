import AbstractBackend
import AbstractBackendInMemory

/// The providers `abe` links, in the loader's order of preference.
enum Providers {
    static let linked: [MessageQueueProvider] = [InMemoryBackend.provider]
}
