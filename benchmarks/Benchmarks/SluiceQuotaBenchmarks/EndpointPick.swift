// The pure core of inference-aware endpoint picking (issue 11): what the load balancer would pay
// per request, and what the worker pays per scraped /metrics page. Compare with
// `Baseline.copy1KB` of the same run.
//
// - `Endpoints.pick.8`: one pick among 8 endpoints for a 4 KiB prompt's 16 block hashes, each
//   endpoint's prefix index holding 1,000 learnt prompts; filters, five scorers, the best score.
//   The aim is under 2 µs and no allocation.
// - `Endpoints.hash.prompt4KB`: the 4 KiB prompt's chained block hashes;
//   `Endpoints.hash.sha256.prompt4KB` is the project's SHA-256 on the same bytes, for scale.
// - `Endpoints.request.hashPickRecord`: the whole per-request sequence (hash, pick, record where
//   the request went).
// - `Endpoints.metrics.parseVLLM`: one read of a 28 KiB vLLM /metrics page
//   (Tests/SluiceCoreTests/Fixtures/metrics/vllm.txt, 275 lines, 174 histogram buckets).
import Benchmark
import BenchmarkFixtures
import Foundation
import SluiceCore

private let promptBytes: [UInt8] = {
    // A 2 KiB system prompt that endpoint 3 has served, then 2 KiB of the user's own text.
    let system = Array(String(repeating: "You are a helpful assistant for the Sluice gateway. ", count: 40).utf8.prefix(2048))
    let user = Array(String(repeating: "Summarise the incident report and list the follow-ups. ", count: 40).utf8.prefix(2048))
    return system + user
}()

private func learntPrompt(_ endpoint: Int, _ number: Int) -> [UInt8] {
    Array("endpoint \(endpoint) conversation \(number): ".utf8) + [UInt8](repeating: UInt8(number % 251), count: 1024)
}

private let pool: EndpointSnapshot = {
    var endpoints: [EndpointState] = []
    for index in 0..<8 {
        var metrics = ModelServerMetrics(
            waitingRequests: index % 3, runningRequests: 20 + index, kvCacheUsage: 0.2 + Double(index) * 0.05)
        var lora = LoRAState()
        lora.maxLoRA = 4
        metrics.lora = lora
        endpoints.append(EndpointState(metrics: metrics, readAtMillis: nowMillis - 20))
    }
    return EndpointSnapshot(endpoints: endpoints, generation: 1)
}()

private func trainedIndex() -> PrefixIndex {
    // Force-try is fine here: the benchmark's own constant config.
    var index = try! PrefixIndex(endpointCount: 8)
    for endpoint in 0..<8 {
        for number in 0..<1000 { index.record(endpoint: endpoint, PrefixBlockHashes(prompt: learntPrompt(endpoint, number))) }
    }
    index.record(endpoint: 3, PrefixBlockHashes(prompt: Array(promptBytes.prefix(2048)) + [UInt8](repeating: 1, count: 512)))
    return index
}

func endpointBenchmarks() {
    let scorer = try! EndpointScorer(config: EndpointScoringConfig())

    Benchmark("Endpoints.pick.8") { benchmark in
        let index = trainedIndex()
        let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: promptBytes))
        var picks = PicksSinceSnapshot()
        picks.align(with: pool)
        var wrong = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let pick = scorer.pick(
                request, snapshot: pool, candidates: .first(8), prefixIndex: index, picksSinceSnapshot: picks,
                nowMillis: nowMillis, tieBreak: UInt64(truncatingIfNeeded: iteration))
            if case .endpoint(3, _, _) = pick {} else { wrong += 1 }
        }
        benchmark.stopMeasurement()
        if wrong != 0 { benchmark.error("\(wrong) picks missed endpoint 3, which holds the prefix") }
    }

    Benchmark("Endpoints.hash.prompt4KB") { benchmark in
        precondition(promptBytes.count == 4096)
        for _ in benchmark.scaledIterations {
            blackHole(PrefixBlockHashes(prompt: promptBytes)[15])
        }
    }

    Benchmark("Endpoints.hash.sha256.prompt4KB") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(SHA256.hash(promptBytes))
        }
    }

    Benchmark("Endpoints.request.hashPickRecord") { benchmark in
        var index = trainedIndex()
        var picks = PicksSinceSnapshot()
        picks.align(with: pool)
        var missed = 0
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            let request = EndpointRequest(prefix: PrefixBlockHashes(prompt: promptBytes))
            let pick = scorer.pick(
                request, snapshot: pool, candidates: .first(8), prefixIndex: index, picksSinceSnapshot: picks,
                nowMillis: nowMillis, tieBreak: UInt64(truncatingIfNeeded: iteration))
            guard case .endpoint(let chosen, _, _) = pick else {
                missed += 1
                continue
            }
            index.record(endpoint: chosen, request.prefix)
            // Fresh metrics every 50 requests, as a 50 ms scrape would bring at 1,000 req/s.
            if iteration % 50 == 49 { picks = PicksSinceSnapshot() } else { picks.recordPick(chosen) }
        }
        benchmark.stopMeasurement()
        if missed != 0 { benchmark.error("\(missed) requests fell back") }
    }

    // The filter's hand-over for the 1 KiB chat request (`BenchmarkFixtures.chatBody`): find the
    // prompt's field, hash its blocks, encode the `x-sluice-epp` value (one byte array, one String).
    Benchmark("Endpoints.handOver.encode.chat1KB") { benchmark in
        let body = chatBody
        for _ in benchmark.scaledIterations {
            let span = body.span
            let prompt = EndpointHandOver.promptBytes(of: span)
            let hashes = PrefixBlockHashes(prompt: span.extracting(prompt))
            blackHole(EndpointHandOver.encode(prefix: hashes, adapter: nil))
        }
    }

    // The load balancer's read of a 16-block hand-over (the 4 KiB prompt) with an adapter.
    Benchmark("Endpoints.handOver.decode.16") { benchmark in
        let value = Array(EndpointHandOver.encode(prefix: PrefixBlockHashes(prompt: promptBytes), adapter: AdapterID("sql-lora")).utf8)
        var wrong = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if EndpointHandOver.decode(value.span)?.prefix.count != 16 { wrong += 1 }
        }
        benchmark.stopMeasurement()
        if wrong != 0 { benchmark.error("\(wrong) decodes failed") }
    }

    Benchmark("Endpoints.metrics.parseVLLM") { benchmark in
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../../Tests/SluiceCoreTests/Fixtures/metrics/vllm.txt")
        guard let data = try? Data(contentsOf: fixture) else {
            benchmark.error("cannot read \(fixture.path)")
            return
        }
        let page = Array(data)
        benchmark.startMeasurement()
        var wrong = 0
        for _ in benchmark.scaledIterations {
            let metrics = ModelServerMetrics.parse(page)
            if metrics.waitingRequests != 4 || metrics.lora == nil { wrong += 1 }
        }
        benchmark.stopMeasurement()
        if wrong != 0 { benchmark.error("\(wrong) parses read the wrong figures") }
    }
}
