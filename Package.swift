// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "abstract-backend",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AbstractBackend", targets: ["AbstractBackend"]),
        .library(name: "AbstractBackendInMemory", targets: ["AbstractBackendInMemory"]),
        .library(name: "AbstractBackendContractTests", targets: ["AbstractBackendContractTests"]),
        .executable(name: "abe", targets: ["abe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
    ],
    targets: [
        .target(
            name: "AbstractBackend",
            dependencies: [.product(name: "Logging", package: "swift-log")],
            path: "Sources/AbstractBackend"
        ),
        .target(
            name: "AbstractBackendInMemory",
            dependencies: [
                "AbstractBackend",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Providers/InMemory"
        ),
        .target(
            name: "AbstractBackendRedis",
            dependencies: [
                "AbstractBackend",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Providers/Redis"
        ),
        .target(
            name: "AbstractBackendContractTests",
            dependencies: ["AbstractBackend"],
            path: "ContractTests"
        ),
        .executableTarget(
            name: "abe",
            dependencies: [
                "AbstractBackend",
                "AbstractBackendInMemory",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/abe"
        ),
        .testTarget(
            name: "AbstractBackendTests",
            dependencies: ["AbstractBackend", "AbstractBackendInMemory", .product(name: "Logging", package: "swift-log")]
        ),
        .testTarget(
            name: "AbstractBackendInMemoryTests",
            dependencies: ["AbstractBackend", "AbstractBackendInMemory"]
        ),
        .testTarget(
            name: "InMemoryContractTests",
            dependencies: ["AbstractBackendContractTests", "AbstractBackend", "AbstractBackendInMemory"]
        ),
        .testTarget(
            name: "AbstractBackendRedisTests",
            dependencies: ["AbstractBackend", "AbstractBackendRedis"],
            path: "Tests/AbstractBackendRedisTests"
        ),
    ],
    swiftLanguageModes: [.v6]
)
