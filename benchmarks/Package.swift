// swift-tools-version: 6.1
// A package of its own: the benchmark plugin only discovers targets under a folder named
// `Benchmarks`, and keeping it apart keeps its dependencies out of the main build.
import PackageDescription

let package = Package(
    name: "sluice-benchmarks",
    platforms: [.macOS(.v13)],
    dependencies: [
        .package(name: "sluice", path: "../"),
        // Only MallocInterposer: naming the traits drops the default RuntimeInterposer, whose
        // package is not in the local mirror (so there are no ARC counters here).
        .package(url: "https://github.com/ordo-one/benchmark", exact: "1.38.1", traits: ["MallocInterposer"]),
        // For the sluiced benchmarks and the ADS load client: the versions the main package resolves.
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        .target(
            name: "BenchmarkFixtures",
            dependencies: [.product(name: "Benchmark", package: "benchmark")],
            path: "Sources/BenchmarkFixtures"
        ),
        .executableTarget(
            name: "SluiceEnvoyBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "BenchmarkFixtures",
                .product(name: "SluiceCore", package: "sluice"),
                // Links the module's exported hooks, which the fake host calls by symbol.
                .product(name: "SluiceEnvoy", package: "sluice"),
                .product(name: "SluiceTestHost", package: "sluice"),
            ],
            path: "Benchmarks/SluiceEnvoyBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SluiceTranslateBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "BenchmarkFixtures",
                .product(name: "SluiceCore", package: "sluice"),
            ],
            path: "Benchmarks/SluiceTranslateBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        .executableTarget(
            name: "SluiceQuotaBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "BenchmarkFixtures",
                .product(name: "SluiceCore", package: "sluice"),
            ],
            path: "Benchmarks/SluiceQuotaBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        /// The generated configs of the sluiced benchmarks (1,000 models, 10,000 consumers, 100 backends).
        .target(
            name: "SluicedFixtures",
            dependencies: [
                .product(name: "SluiceCore", package: "sluice"),
                .product(name: "SluiceControl", package: "sluice"),
                .product(name: "SluiceXDS", package: "sluice"),
            ],
            path: "Sources/SluicedFixtures"
        ),
        .executableTarget(
            name: "SluicedBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "SluicedFixtures",
                .product(name: "SluiceControl", package: "sluice"),
                .product(name: "SluiceXDS", package: "sluice"),
                .product(name: "SluiceXDSProto", package: "sluice"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ],
            path: "Benchmarks/SluicedBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
        /// ADS fan-out: an in-process `ADSServer` and N simulated Envoys (grpc-swift 2 clients).
        .executableTarget(
            name: "ads-load",
            dependencies: [
                "SluicedFixtures",
                .product(name: "SluiceControl", package: "sluice"),
                .product(name: "SluiceXDS", package: "sluice"),
                .product(name: "SluiceXDSProto", package: "sluice"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Sources/ads-load"
        ),
    ]
)
