// swift-tools-version: 6.1
import Foundation
import PackageDescription

/// Absolute path of this package: linker flags need absolute paths because SwiftPM runs the
/// linker from the build directory.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().path

let strictSwift: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "sluice",
    products: [
        /// `libsluice.so`: the module Envoy loads (`dynamic_module_config.name: sluice`).
        .library(name: "sluice", type: .dynamic, targets: ["SluiceModule"]),
        .library(name: "SluiceCore", targets: ["SluiceCore"]),
        .library(name: "SluiceEnvoy", targets: ["SluiceEnvoy"]),
        .library(name: "SluiceTestHost", targets: ["SluiceTestHost"]),
        // sluiced's libraries, for the benchmark package (benchmarks/Benchmarks/SluicedBenchmarks).
        .library(name: "SluiceControl", targets: ["SluiceControl"]),
        .library(name: "SluiceXDS", targets: ["SluiceXDS"]),
        .library(name: "SluiceXDSProto", targets: ["SluiceXDSProto"]),
        .executable(name: "sluice-sim", targets: ["sluice-sim"]),
        .executable(name: "sluiced", targets: ["sluiced"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // sluiced only (the module links none of these):
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        // sluiced's /metrics (fleet metrics from the usage records): Prometheus text exposition.
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        /// Our own declaration of Envoy 1.40's dynamic-modules ABI subset (header-only C module).
        .target(
            name: "CEnvoyABI",
            path: "include/CEnvoyABI",
            publicHeadersPath: "."
        ),
        /// OpenSSL libcrypto (SHA-256, HMAC) behind a prefixed C shim; apt `libssl-dev`.
        .target(
            name: "CSluiceCrypto",
            path: "include/CSluiceCrypto",
            publicHeadersPath: ".",
            linkerSettings: [.linkedLibrary("crypto")]
        ),
        /// Pure Swift logic: no Envoy, no C, no Foundation.
        .target(
            name: "SluiceCore",
            swiftSettings: strictSwift
        ),
        /// The only code that touches raw ABI pointers: hooks, host wrappers, per-stream slots.
        .target(
            name: "SluiceEnvoy",
            dependencies: ["CEnvoyABI", "CSluiceCrypto", "SluiceCore"],
            swiftSettings: strictSwift
        ),
        /// The `.so` product's own target: carries the link flags that make the module
        /// self-contained (static Swift runtime) and export only Envoy hooks.
        .target(
            name: "SluiceModule",
            dependencies: ["SluiceEnvoy"],
            exclude: ["exports.map"],
            swiftSettings: strictSwift,
            linkerSettings: [
                .unsafeFlags([
                    "-static-stdlib",
                    "-Xlinker", "--version-script=\(packageRoot)/Sources/SluiceModule/exports.map",
                ])
            ]
        ),
        /// A fake Envoy for tests and benchmarks: implements the callbacks in memory.
        .target(
            name: "SluiceTestHost",
            dependencies: ["CEnvoyABI"],
            swiftSettings: strictSwift
        ),
        /// The timing model of a vLLM engine (scheduler, prefix-cached KV blocks, LoRA slots) and
        /// its `/metrics` page, pure and clock-driven, for sluice-sim's vLLM-like pool.
        .target(
            name: "SluiceSimEngine",
            dependencies: ["SluiceCore"],
            swiftSettings: strictSwift
        ),
        /// Loopback simulators of the LLM providers, for integration tests and demos.
        .executableTarget(
            name: "sluice-sim",
            dependencies: [
                "SluiceCore", "SluiceSimEngine",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSwift
        ),
        // MARK: - sluiced, the control plane

        /// The config language of sluiced: YAML in, validated with positions and did-you-mean,
        /// compiled to an `EnvoyPlan` (Envoy's resources in Sluice's terms) and the module's configs.
        .target(
            name: "SluiceControl",
            dependencies: ["SluiceCore", .product(name: "Yams", package: "Yams")],
            exclude: ["sluice.schema.json"],
            swiftSettings: strictSwift
        ),
        /// Swift generated from the project's own minimal .proto declarations of the Envoy xDS
        /// messages sluiced sends (Sources/SluiceXDSProto/Protos, regenerated by its generate.sh).
        .target(
            name: "SluiceXDSProto",
            dependencies: [
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
            ],
            exclude: ["Protos", "generate.sh"]
        ),
        /// xDS: an `EnvoyPlan` encoded as Envoy resources (ADS snapshots, or a static bootstrap for
        /// `sluiced render`) and the ADS server (state of the world, versions, nonces, ACK/NACK).
        .target(
            name: "SluiceXDS",
            dependencies: [
                "SluiceControl", "SluiceXDSProto", "SluiceCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRPCCore", package: "grpc-swift-2"),
                .product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport"),
                .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        /// The admin API (Hummingbird) and its stores (SQLite through GRDB, PostgreSQL through postgres-nio),
        /// the fleet usage ingest and sluiced's Prometheus metrics.
        .target(
            name: "SluiceAdmin",
            dependencies: [
                "SluiceControl",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strictSwift
        ),
        /// The daemon: `sluiced --config sluice.yaml`, `sluiced render`, `sluiced keys ...`.
        .executableTarget(
            name: "sluiced",
            dependencies: [
                "SluiceControl", "SluiceXDS", "SluiceAdmin",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strictSwift
        ),

        // MARK: - Tests

        .testTarget(
            name: "SluiceControlTests",
            dependencies: ["SluiceControl", "SluiceCore"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SluiceXDSTests",
            dependencies: [
                "SluiceXDS", "SluiceXDSProto", "SluiceControl", "SluiceCore",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SluiceAdminTests",
            dependencies: [
                "SluiceAdmin", "SluiceControl",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SluiceCoreTests",
            dependencies: ["SluiceCore"],
            // Golden fixtures are read from the source tree (#filePath), not bundled as resources.
            exclude: ["Fixtures"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SluiceSimEngineTests",
            dependencies: ["SluiceSimEngine", "SluiceCore"],
            swiftSettings: strictSwift
        ),
        .testTarget(
            name: "SluiceEnvoyTests",
            dependencies: ["SluiceEnvoy", "SluiceTestHost", "SluiceCore"],
            swiftSettings: strictSwift
        ),
    ]
)
