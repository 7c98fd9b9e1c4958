// sluiced's per-edit work on a large config (1,000 models, 10,000 consumers with SHA-256 keys,
// 100 backends, 100 teams; `SluicedFixtures.largeYAML`): load (parse + validate), compile to
// an `EnvoyPlan`, encode the plan as an xDS snapshot, and serialise that snapshot's responses,
// next to baselines on the same bytes measured in the same run:
//
// - `Baseline.yamlCompose.large`: Yams composing the same YAML text into a node tree (the first
//   step of `SluiceConfig.load`; everything above it is sluiced's own validation).
// - `Baseline.copy.snapshotBytes`: copying as many bytes as the serialised snapshot has (the
//   floor of writing it anywhere).
//
// Each iteration does the operation once on the whole config (`scalingFactor: .one`).
import Benchmark
import Foundation
import SluiceControl
import SluiceXDS
import SluiceXDSProto
import SluicedFixtures
import SwiftProtobuf
import Yams

/// Every response one Envoy subscribed to everything gets for `snapshot`, serialised.
func serializeSnapshot(_ snapshot: XDSSnapshot) throws -> [[UInt8]] {
    var out: [[UInt8]] = []
    out.reserveCapacity(XDSType.pushOrder.count)
    for type in XDSType.pushOrder {
        let items = snapshot[type]
        var response = DiscoveryResponse()
        response.versionInfo = items.version
        response.typeURL = type.typeURL
        response.nonce = "1-1"
        response.resources = items.resources(for: [], wildcard: true)
        out.append(try response.serializedBytes())
    }
    return out
}

// Set-up, outside the measured region; globals are initialised lazily, so each benchmark's
// process builds only what it uses.
let largeYAML = SluicedFixtures.largeYAML()
let large: (config: SluiceConfig, plan: EnvoyPlan) = {
    let large = SluicedFixtures.plan(largeYAML)
    let size = SluicedFixtures.Size()
    precondition(large.config.models.count == size.models && large.config.consumers.count == size.consumers, "large config lost entries")
    precondition(large.config.backends.count == size.backends, "large config lost backends")
    return large
}()
let largeSnapshot: XDSSnapshot = {
    do {
        return try SnapshotCache().setPlan(large.plan, secrets: SluicedFixtures.secrets)
    } catch {
        fatalError("the large plan does not encode: \(error)")
    }
}()
let largeWire: [[UInt8]] = {
    do {
        let wire = try serializeSnapshot(largeSnapshot)
        let counts = XDSType.pushOrder.enumerated().map { index, type in
            "\(type.shortName) \(largeSnapshot[type].names.count) / \(wire[index].count) B"
        }
        print("large config: \(largeYAML.utf8.count) bytes of YAML; resources / serialised: \(counts.joined(separator: ", "))")
        return wire
    } catch {
        fatalError("the large snapshot does not serialise: \(error)")
    }
}()
let largeWireBytes = largeWire.reduce(0) { $0 + $1.count }

let benchmarks: @Sendable () -> Void = {
    // Under `CI` only the counts (stable on shared runners). Thresholds/ holds the p90 malloc
    // count per iteration; the tolerance of 500 absorbs the harness's few stray allocations and
    // still fails `thresholds check` on one more allocation per model (+1,000) or per consumer
    // (+10,000).
    let ci = ProcessInfo.processInfo.environment["CI"] != nil
    Benchmark.defaultConfiguration = .init(
        metrics: ci ? [.mallocCountTotal, .instructions] : [.wallClock, .mallocCountTotal, .instructions, .peakMemoryResident],
        warmupIterations: 1, scalingFactor: .one, maxDuration: .seconds(15), maxIterations: 25,
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 500])])

    // MARK: Baselines

    Benchmark("Baseline.yamlCompose.large") { benchmark in
        let yaml = largeYAML
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try Yams.compose(yaml: yaml)) }
    }

    Benchmark("Baseline.copy.snapshotBytes") { benchmark in
        let wire = largeWire
        let wireBytes = largeWireBytes
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            var copy: [UInt8] = []
            copy.reserveCapacity(wireBytes)
            for part in wire { copy.append(contentsOf: part) }
            blackHole(copy)
        }
    }

    // MARK: The daemon's work per edit

    Benchmark("Sluiced.config.load.large") { benchmark in
        let yaml = largeYAML
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try SluiceConfig.load(yaml: yaml, file: "large.yaml")) }
    }

    Benchmark("Sluiced.config.compile.large") { benchmark in
        let config = large.config
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try config.compile()) }
    }

    // What `ADSServer.setSnapshot` does: every resource encoded (`ResourceEncoder.encode`), the
    // per-type digests compared with the previous snapshot, the consistency check (which decodes
    // the listeners, clusters and route tables again). Same plan each time, as an edit elsewhere
    // in the config would give.
    Benchmark("Sluiced.snapshot.build.large") { benchmark in
        let plan = large.plan
        let cache = SnapshotCache()
        _ = try cache.setPlan(plan, secrets: SluicedFixtures.secrets)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try cache.setPlan(plan, secrets: SluicedFixtures.secrets)) }
    }

    // The resource encoding alone (no digest, no consistency check).
    Benchmark("Sluiced.snapshot.encode.large") { benchmark in
        let plan = large.plan
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try ResourceEncoder.encode(plan, secrets: SluicedFixtures.secrets)) }
    }

    // The six DiscoveryResponses (CDS, EDS, LDS, RDS, SDS, ECDS) an Envoy subscribed to
    // everything receives, serialised to protobuf bytes (what gRPC writes per Envoy).
    Benchmark("Sluiced.snapshot.serialize.large") { benchmark in
        let snapshot = largeSnapshot
        _ = largeWire
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations { blackHole(try serializeSnapshot(snapshot)) }
    }
}
