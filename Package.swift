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
        .executable(name: "sluice-sim", targets: ["sluice-sim"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
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
        /// Loopback simulators of the LLM providers, for integration tests and demos.
        .executableTarget(
            name: "sluice-sim",
            dependencies: [
                "SluiceCore",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
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
            name: "SluiceEnvoyTests",
            dependencies: ["SluiceEnvoy", "SluiceTestHost", "SluiceCore"],
            swiftSettings: strictSwift
        ),
    ]
)
