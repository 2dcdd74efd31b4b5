// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "abstract-backend",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AbstractBackend", targets: ["AbstractBackend"]),
        .library(name: "AbstractBackendInMemory", targets: ["AbstractBackendInMemory"]),
        .library(name: "AbstractBackendRedis", targets: ["AbstractBackendRedis"]),
        .library(name: "AbstractBackendFileSpool", targets: ["AbstractBackendFileSpool"]),
        .library(name: "AbstractBackendContractTests", targets: ["AbstractBackendContractTests"]),
        .executable(name: "abe", targets: ["abe"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.14.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    ],
    targets: [
        .target(
            name: "AbstractBackend",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
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
        .systemLibrary(
            name: "CHiredis",
            path: "Providers/CHiredis",
            pkgConfig: "hiredis",
            providers: [.apt(["libhiredis-dev"])]
        ),
        .target(
            name: "CHiredisReplyArena",
            dependencies: ["CHiredis"],
            path: "Providers/CHiredisReplyArena"
        ),
        .target(
            name: "AbstractBackendRedis",
            dependencies: [
                "AbstractBackend",
                "CHiredis",
                "CHiredisReplyArena",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Providers/Redis"
        ),
        .target(
            name: "CCRC32C",
            path: "Providers/CCRC32C"
        ),
        .target(
            name: "AbstractBackendFileSpool",
            dependencies: [
                "AbstractBackend",
                "CCRC32C",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Providers/FileSpool"
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
                "AbstractBackendRedis",
                "AbstractBackendFileSpool",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/abe"
        ),
        .executableTarget(
            name: "abe-example-runtime-flow",
            dependencies: [
                "AbstractBackend", "AbstractBackendInMemory", "AbstractBackendFileSpool", "AbstractBackendRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            path: "Examples/RuntimeFlow"
        ),
        .executableTarget(
            name: "abe-spool-worker",
            dependencies: ["AbstractBackend", "AbstractBackendFileSpool", "TestSupport"],
            path: "Tests/SpoolWorker"
        ),
        .executableTarget(
            name: "abe-consumer-worker",
            dependencies: [
                "AbstractBackend",
                "AbstractBackendInMemory",
                "AbstractBackendFileSpool",
                "AbstractBackendRedis",
                "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/ConsumerWorker"
        ),
        .executableTarget(
            name: "abe-chaos",
            dependencies: [
                "AbstractBackend", "AbstractBackendFileSpool", "AbstractBackendRedis", "CHiredis", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/Chaos"
        ),
        .target(
            name: "TestSupport",
            dependencies: ["AbstractBackend", .product(name: "Logging", package: "swift-log")],
            path: "Tests/TestSupport"
        ),
        .testTarget(
            name: "AbstractBackendTests",
            dependencies: [
                "AbstractBackend", "AbstractBackendInMemory", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        .testTarget(
            name: "MetricsTests",
            dependencies: [
                "AbstractBackend", "AbstractBackendInMemory", "AbstractBackendFileSpool", "AbstractBackendRedis",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ]
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
            name: "AbstractBackendFileSpoolTests",
            dependencies: ["AbstractBackend", "AbstractBackendFileSpool", "TestSupport", "abe-spool-worker"]
        ),
        .testTarget(
            name: "FileSpoolContractTests",
            dependencies: ["AbstractBackendContractTests", "AbstractBackend", "AbstractBackendFileSpool"]
        ),
        .testTarget(
            name: "AbstractBackendRedisContractTests",
            dependencies: ["AbstractBackendContractTests", "AbstractBackend", "AbstractBackendRedis"]
        ),
        .testTarget(
            name: "AbstractBackendRedisTests",
            dependencies: ["AbstractBackend", "AbstractBackendRedis", "CHiredis", "CHiredisReplyArena", "TestSupport", .product(name: "Logging", package: "swift-log")],
            path: "Tests/AbstractBackendRedisTests"
        ),
        .testTarget(
            name: "AbeCLITests",
            dependencies: ["abe", "AbstractBackend", "AbstractBackendInMemory", "TestSupport"]
        ),
        .testTarget(
            name: "ConsumerKillTests",
            dependencies: ["AbstractBackend", "AbstractBackendFileSpool", "AbstractBackendRedis", "TestSupport", "abe-consumer-worker"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
