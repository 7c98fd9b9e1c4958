// What the per-request benchmark targets share, so their rows describe the same request under the
// same settings and can be held against each other.
import Benchmark
import Foundation

/// A chat request padded to exactly 1 KiB (system + user, `max_tokens` 256, gpt-4o-mini), the body
/// of the filter and quota benchmarks; `Baseline.copy1KB` copies these bytes.
public let chatBody: [UInt8] = {
    let head = #"{"model":"gpt-4o-mini","temperature":0.2,"max_tokens":256,"stream":false,"messages":["#
        + #"{"role":"system","content":"You are a concise assistant. Answer in plain English."},"#
        + #"{"role":"user","content":""#
    let tail = #""}]}"#
    let sentence = "Summarise the trade-offs of running gateway logic inside the proxy process. "
    var content = ""
    while head.utf8.count + content.utf8.count + tail.utf8.count < 1024 { content += sentence }
    let body = Array((head + content).utf8.prefix(1024 - tail.utf8.count)) + Array(tail.utf8)
    precondition(body.count == 1024)
    return body
}()

/// One iteration per request and 1,000 per sample, every row in nanoseconds. `localMetrics` are
/// measured on a developer machine; under `CI` only the counts, which are stable on shared
/// runners. Thresholds/ holds p90 malloc counts per sample: a tolerance of 100 (0.1 a request)
/// absorbs a stray allocation of the harness, yet one more allocation per request (+1,000) still
/// fails `thresholds check`. Under `SLUICE_ALLOCATION_CHECK` (set by check-allocations.sh) a
/// benchmark takes `allocationCheckSamples` samples and measures nothing but the count.
public func perRequestConfiguration(localMetrics: [BenchmarkMetric]) -> Benchmark.Configuration {
    let environment = ProcessInfo.processInfo.environment
    let ci = environment["CI"] != nil
    let allocationCheck = environment["SLUICE_ALLOCATION_CHECK"] != nil
    return .init(
        metrics: allocationCheck ? [.mallocCountTotal] : ci ? [.mallocCountTotal, .instructions] : localMetrics,
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: allocationCheck ? allocationCheckSamples : .kilo(10),
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100])]
    )
}

/// Samples per benchmark in the CI allocation check. The counts of a sample repeat exactly (set-up
/// is outside the measured region and 3 warm-up samples run first), so p90 over 20 samples equals
/// p90 over thousands and still ignores two samples that met a one-off allocation (a table
/// growing); the slowest benchmark takes about 1.5 s instead of 2 s each, the fastest a few ms.
public let allocationCheckSamples = 20
