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
/// fails `thresholds check`.
public func perRequestConfiguration(localMetrics: [BenchmarkMetric]) -> Benchmark.Configuration {
    let ci = ProcessInfo.processInfo.environment["CI"] != nil
    return .init(
        metrics: ci ? [.mallocCountTotal, .instructions] : localMetrics,
        timeUnits: .nanoseconds,
        warmupIterations: 3,
        scalingFactor: .kilo,
        maxDuration: .seconds(2),
        maxIterations: .kilo(10),
        thresholds: [.mallocCountTotal: .init(absolute: [.p90: 100])]
    )
}
