#!/usr/bin/env bash
# Regenerates Sources/SluiceXDSProto/Generated/*.swift from Protos/*.proto.
#
# CI never runs this: the generated Swift is committed. Run it after editing a
# .proto. It needs:
#   - protoc (Debian `protobuf-compiler`; installed with apt-get if missing),
#   - protoc-gen-swift (swift-protobuf 1.39.0) and protoc-gen-grpc-swift-2
#     (grpc-swift-protobuf 2.4.1), built once (release, ~10 min on 2 cores)
#     in a scratch directory, $SLUICE_PROTOC_PLUGINS (default
#     /tmp/sluice-protoc-plugins), from the package mirror git resolves
#     github.com URLs to.
#
# The well-known types (google/protobuf/*.proto) come with protoc; their Swift
# is SwiftProtobuf's own (Google_Protobuf_Any, ...), so only our files are
# generated.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
scratch="${SLUICE_PROTOC_PLUGINS:-/tmp/sluice-protoc-plugins}"
out="$here/Generated"

if ! command -v protoc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get install -y protobuf-compiler || { $sudo apt-get update && $sudo apt-get install -y protobuf-compiler; }
fi

build_plugins() {
    mkdir -p "$scratch"
    cd "$scratch"
    if [ ! -f Package.swift ]; then
        mkdir -p Sources/Placeholder
        echo "// placeholder so the package has a target" > Sources/Placeholder/Placeholder.swift
        cat > Package.swift <<'EOF'
// swift-tools-version:6.0
import PackageDescription
let package = Package(
    name: "SluiceProtocPlugins",
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf.git", exact: "1.39.0"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf.git", exact: "2.4.1"),
    ],
    targets: [
        .target(name: "Placeholder", dependencies: [
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "GRPCProtobuf", package: "grpc-swift-protobuf"),
        ]),
    ]
)
EOF
    fi
    swift build -c release --product protoc-gen-swift
    swift build -c release --product protoc-gen-grpc-swift-2
}

bin="$scratch/.build/release"
if [ ! -x "$bin/protoc-gen-swift" ] || [ ! -x "$bin/protoc-gen-grpc-swift-2" ]; then
    (build_plugins)
fi
if [ "${1:-}" = "--plugins-only" ]; then
    echo "$bin"
    exit 0
fi

rm -rf "$out"
mkdir -p "$out"
cd "$here/Protos"
protos=$(find . -name '*.proto' | sed 's|^\./||' | sort)
protoc -I . -I /usr/include \
    --plugin=protoc-gen-swift="$bin/protoc-gen-swift" \
    --swift_out="$out" \
    --swift_opt=Visibility=Public \
    --swift_opt=FileNaming=PathToUnderscores \
    $protos
# Only the aggregated discovery service has RPCs.
protoc -I . -I /usr/include \
    --plugin=protoc-gen-grpc-swift-2="$bin/protoc-gen-grpc-swift-2" \
    --grpc-swift-2_out="$out" \
    --grpc-swift-2_opt=Visibility=Public,Client=true,Server=true,FileNaming=PathToUnderscores \
    envoy/service/discovery/v3/ads.proto
echo "generated into $out:"
ls "$out"
