// swift-tools-version:6.0
import PackageDescription

// An Abstract Backend provider as its own package. It uses only the public products of Abstract
// Backend (the core and the contract suite) plus swift-log, whose `Logger` the core's API takes
// (1.11 for `LogHandler.log(event:)`, which the tests implement).
let package = Package(
    name: "abstract-backend-template",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "AbstractBackendTemplate", targets: ["AbstractBackendTemplate"]),
    ],
    dependencies: [
        // While developing next to an Abstract Backend checkout. To publish, depend on a release:
        // .package(url: "https://github.com/<owner>/abstract-backend-swift.git", from: "0.1.0"),
        // and use `package: "abstract-backend-swift"` in the product references below.
        .package(name: "abstract-backend", path: "../.."),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.11.0"),
    ],
    targets: [
        .target(
            name: "AbstractBackendTemplate",
            dependencies: [
                .product(name: "AbstractBackend", package: "abstract-backend"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "AbstractBackendTemplateTests",
            dependencies: [
                "AbstractBackendTemplate",
                .product(name: "AbstractBackend", package: "abstract-backend"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .testTarget(
            name: "TemplateContractTests",
            dependencies: [
                "AbstractBackendTemplate",
                .product(name: "AbstractBackend", package: "abstract-backend"),
                .product(name: "AbstractBackendContractTests", package: "abstract-backend"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
