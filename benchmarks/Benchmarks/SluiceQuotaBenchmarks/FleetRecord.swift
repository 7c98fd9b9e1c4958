// What a usage record adds to a request on Envoy's worker thread when the fleet worker runs, and
// what the main thread pays per record to ship it. Compare each with `Quota.authAdmitSettle.single`
// (the filter's auth + route + quota sequence) and `Baseline.copy1KB` of the same run.
//
// - `Fleet.record.makePush`: what the filter does per request: the x-request-id and backend come
//   from Envoy as bytes and become Strings, the record is made (values clamped, the id checked)
//   and pushed onto the process's lock-free queue. The consumer drains after the measured loop.
// - `Fleet.queue.push`: the push alone (a made record copied into the ring: string retains).
// - `Fleet.worker.drainEncode`: the main thread's share: drain into the shipper and encode the
//   500-record batch sluiced receives.
import Benchmark
import SluiceCore

let requestIDBytes = Array("0b7c4f7e-3f0a-4d8e-9a51-2f1e6c9d8a17".utf8)
let backendBytes = Array("openai".utf8)
let consumerName = "demo"
let teamName = "demo-team"
let modelName = "gpt-4o-mini"
let providerName = "openai"

@inline(never)
func makeRecord(sequence: Int) -> FleetUsageRecord {
    FleetUsageRecord(
        id: String(decoding: requestIDBytes, as: UTF8.self), timeMillis: nowMillis + Int64(sequence), key: consumerName,
        team: teamName, model: modelName, backend: String(decoding: backendBytes, as: UTF8.self), provider: providerName,
        status: 200, inputTokens: reportedUsage.inputTokens, cachedInputTokens: reportedUsage.cachedInputTokens,
        outputTokens: reportedUsage.outputTokens, costMicros: 39, durationMillis: 120, ttftMillis: nil, stream: false)
}

func fleetBenchmarks() {
    Benchmark("Fleet.record.makePush") { benchmark in
        let queue = BoundedMPSCQueue<FleetUsageRecord>(minimumCapacity: benchmark.scaledIterations.count)
        benchmark.startMeasurement()
        var refused = 0
        for index in benchmark.scaledIterations {
            if !queue.push(makeRecord(sequence: index)) { refused += 1 }
        }
        benchmark.stopMeasurement()
        let drained = queue.drain(max: .max) { blackHole($0) }
        if refused != 0 || drained != benchmark.scaledIterations.count {
            benchmark.error("\(refused) refused, \(drained) drained of \(benchmark.scaledIterations.count)")
        }
    }

    Benchmark("Fleet.queue.push") { benchmark in
        let queue = BoundedMPSCQueue<FleetUsageRecord>(minimumCapacity: benchmark.scaledIterations.count)
        let record = makeRecord(sequence: 0)
        benchmark.startMeasurement()
        var refused = 0
        for _ in benchmark.scaledIterations {
            if !queue.push(record) { refused += 1 }
        }
        benchmark.stopMeasurement()
        let drained = queue.drain(max: .max) { blackHole($0) }
        if refused != 0 || drained != benchmark.scaledIterations.count {
            benchmark.error("\(refused) refused, \(drained) drained of \(benchmark.scaledIterations.count)")
        }
    }

    Benchmark("Fleet.worker.drainEncode") { benchmark in
        var config = FleetWorkerConfig(cluster: "sluiced_fleet", tokenFile: "/t", envoy: "sluice-gateway")
        config.flushIntervalMillis = 1_000_000
        let queue = BoundedMPSCQueue<FleetUsageRecord>(minimumCapacity: benchmark.scaledIterations.count)
        for index in benchmark.scaledIterations { queue.push(makeRecord(sequence: index)) }
        var shipper = UsageShipper(config: config, nowMillis: 0, seed: 1)
        let answer = FleetCalloutOutcome.answered(
            status: 200, body: Array(#"{"accepted":500,"duplicates":0,"rejected":[]}"#.utf8))
        benchmark.startMeasurement()
        queue.drain(max: .max) { shipper.accept($0) }
        var bytes = 0
        while let body = shipper.nextBatch(nowMillis: 0) {
            bytes += body.count
            _ = shipper.batchFinished(answer, nowMillis: 0)
        }
        benchmark.stopMeasurement()
        blackHole(bytes)
        if shipper.stats.sent != benchmark.scaledIterations.count {
            benchmark.error("\(shipper.stats.sent) sent of \(benchmark.scaledIterations.count)")
        }
    }
}
