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
    ]
)
