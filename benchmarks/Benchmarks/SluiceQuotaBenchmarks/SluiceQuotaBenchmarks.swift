// The per-request cost of authentication and quota accounting in SluiceCore (no host): the
// filter's sequence decide → route → quotaRequest → admit → settle on one thread and its parts,
// then admit + settle with every thread on the same key, next to baselines of the same run.
// Each benchmark has a gateway (so a quota store) of its own and fails if the store's counters do
// not hold exactly what its requests settled.
import Benchmark
import BenchmarkFixtures
import Foundation
import SluiceCore

let benchmarks: @Sendable () -> Void = {
    // One iteration = 1,000 requests (a batch of 1,000 for the contended ones): every row is
    // per request.
    Benchmark.defaultConfiguration = perRequestConfiguration(localMetrics: [.wallClock, .mallocCountTotal, .instructions])

    // MARK: Baselines (as in SluiceEnvoyBenchmarks)

    Benchmark("Baseline.copy1KB") { benchmark in
        for _ in benchmark.scaledIterations {
            var copy: [UInt8] = []
            copy.reserveCapacity(chatBody.count)
            copy.append(contentsOf: chatBody)
            blackHole(copy)
        }
    }

    Benchmark("Core.sha256.key") { benchmark in
        let key = Array("sk-sluice-0123456789abcdef012345".utf8)
        precondition(key.count == 32)
        for _ in benchmark.scaledIterations {
            blackHole(SHA256.hash(key))
        }
    }

    // MARK: One thread: the filter's sequence and its parts

    // decide (Bearer token, key hash, constant-time compare, consumer) → route (reads `model`
    // and `max_tokens` from the 1 KiB body, picks the route) → quotaRequest (estimate and its
    // price) → admit (ten counters) → price the reported usage → settle. What the filter does
    // for a forwarded chat request, minus the host: header and body copies, metadata, stats.
    quotaBenchmark("Quota.authAdmitSettle.single", settlesRequests: true) { benchmark, gateway, _ in
        var failures = 0
        for _ in benchmark.scaledIterations {
            guard case .forward(let consumer, let endpoint) = gateway.decide(requestHead, now: nowSeconds),
                case .success(let routed) = gateway.route(
                    body: chatBody, endpoint: endpoint, consumer: consumer, header: noHeaders)
            else {
                failures += 1
                continue
            }
            let request = gateway.quotaRequest(for: routed, consumer: consumer, bodyByteCount: chatBody.count)
            guard case .admitted(let ticket) = gateway.quotas.admit(request, now: nowMillis) else {
                failures += 1
                continue
            }
            blackHole(ticket.headers)
            let cost = gateway.config.prices.cost(usage: reportedUsage, model: routed.summary.model) ?? 0
            gateway.quotas.settle(ticket, actual: reportedUsage, costMicros: cost, now: nowMillis)
        }
        return failures == 0 ? nil : "\(failures) requests were not forwarded, routed and admitted"
    }

    // The same without route: auth and quota alone (the body is parsed once, in set-up).
    quotaBenchmark("Quota.authAdmitSettle.preRouted", settlesRequests: true) { benchmark, gateway, request in
        let routed: RoutedRequest
        switch gateway.route(body: chatBody, endpoint: .chatCompletions, consumer: Consumer(name: "demo"), header: noHeaders) {
        case .success(let value): routed = value
        case .failure(let error): return "chat body did not route: \(error)"
        }
        benchmark.startMeasurement()
        var failures = 0
        for _ in benchmark.scaledIterations {
            guard case .forward(let consumer, _) = gateway.decide(requestHead, now: nowSeconds) else {
                failures += 1
                continue
            }
            let request = gateway.quotaRequest(for: routed, consumer: consumer, bodyByteCount: chatBody.count)
            if !admitSettle(gateway, request) { failures += 1 }
        }
        return failures == 0 ? nil : "\(failures) requests were not accepted and admitted"
    }

    quotaBenchmark("Quota.admitSettle.single", settlesRequests: true) { benchmark, gateway, request in
        var refused = 0
        for _ in benchmark.scaledIterations {
            if !admitSettle(gateway, request) { refused += 1 }
        }
        return refused == 0 ? nil : "\(refused) requests refused"
    }

    // admit and settle apart: 1,000 admissions measured, their settlements not (and the other
    // way round). The tickets (about 300 bytes each) go to an array reserved beforehand.
    quotaBenchmark("Quota.admit.single", settlesRequests: true) { benchmark, gateway, request in
        var tickets: [AdmissionTicket] = []
        tickets.reserveCapacity(benchmark.scaledIterations.count)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            if case .admitted(let ticket) = gateway.quotas.admit(request, now: nowMillis) { tickets.append(ticket) }
        }
        benchmark.stopMeasurement()
        return settleAll(gateway, tickets, expected: benchmark.scaledIterations.count)
    }

    quotaBenchmark("Quota.settle.single", settlesRequests: true) { benchmark, gateway, request in
        var tickets: [AdmissionTicket] = []
        tickets.reserveCapacity(benchmark.scaledIterations.count)
        for _ in benchmark.scaledIterations {
            if case .admitted(let ticket) = gateway.quotas.admit(request, now: nowMillis) { tickets.append(ticket) }
        }
        guard tickets.count == benchmark.scaledIterations.count else { return "requests refused" }
        benchmark.startMeasurement()
        return settleAll(gateway, tickets, expected: benchmark.scaledIterations.count)
    }

    quotaBenchmark("Quota.decide") { benchmark, gateway, _ in
        for _ in benchmark.scaledIterations {
            blackHole(gateway.decide(requestHead, now: nowSeconds))
        }
        return nil
    }

    quotaBenchmark("Quota.route") { benchmark, gateway, _ in
        let consumer = Consumer(name: "demo", team: "demo-team")
        for _ in benchmark.scaledIterations {
            blackHole(gateway.route(body: chatBody, endpoint: .chatCompletions, consumer: consumer, header: noHeaders))
        }
        return nil
    }

    quotaBenchmark("Quota.quotaRequest") { benchmark, gateway, _ in
        let consumer = Consumer(name: "demo", team: "demo-team")
        guard case .success(let routed) = gateway.route(
            body: chatBody, endpoint: .chatCompletions, consumer: consumer, header: noHeaders)
        else { return "chat body did not route" }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(gateway.quotaRequest(for: routed, consumer: consumer, bodyByteCount: chatBody.count))
        }
        return nil
    }

    // The x-ratelimit-* snapshot of a request's scopes (admit computes one for its ticket).
    quotaBenchmark("Quota.rateLimitHeaders.compute") { benchmark, gateway, request in
        for _ in benchmark.scaledIterations {
            blackHole(gateway.quotas.rateLimitHeaders(for: request, now: nowMillis))
        }
        return nil
    }

    // The six header fields the filter sets on the response from its ticket (strings formatted).
    quotaBenchmark("Quota.rateLimitHeaders.fields") { benchmark, gateway, request in
        guard case .admitted(let ticket) = gateway.quotas.admit(request, now: nowMillis) else { return "refused" }
        guard ticket.headers.fields.count == 6 else { return "expected six x-ratelimit-* fields" }
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(ticket.headers.fields)
        }
        benchmark.stopMeasurement()
        gateway.quotas.release(ticket, now: nowMillis)
        return nil
    }

    // MARK: Many threads, one batch of 1,000 admit + settle per iteration

    let cpus = max(2, ProcessInfo.processInfo.activeProcessorCount)
    for (suffix, threads) in [("cpus", cpus), ("t4", 4)] {
        // The barrier alone: release the workers, each does nothing, wait for all.
        batchBenchmark("Quota.batch.empty.\(suffix)", threads: threads, requests: 0, lanes: .shared)
        // Every thread on the demo key, its team and gpt-4o-mini: the same ten atomic words.
        batchBenchmark("Quota.contended.\(suffix)", threads: threads, requests: 1_000, lanes: .shared)
        // Each thread on a key, team and model of its own: no shared counter (control).
        batchBenchmark("Quota.distinctKeys.\(suffix)", threads: threads, requests: 1_000, lanes: .perThread)
    }
    // The same batch of 1,000 on one thread, through the same code.
    batchBenchmark("Quota.batch.serial", threads: 1, requests: 1_000, lanes: .shared)

    // MARK: Fleet quota leases (LeaseAdmission.swift)

    leaseBenchmarks()

    // MARK: Fleet usage records (FleetRecord.swift)

    fleetBenchmarks()

    // MARK: Endpoint picking (EndpointPick.swift)

    endpointBenchmarks()
}

// MARK: - Registration helpers

/// Registers a single-threaded benchmark on a gateway of its own. `measure` runs one sample
/// (its loop over `scaledIterations`) and returns a problem, if any. With `settlesRequests`,
/// every iteration settles one demo request, and after each sample the store must hold exactly
/// that many requests' usage.
func quotaBenchmark(
    _ name: String, settlesRequests: Bool = false,
    _ measure: @escaping (Benchmark, Gateway, QuotaRequest) -> String?
) {
    let gateway: Gateway
    let request: QuotaRequest
    do {
        gateway = try makeGateway()
        request = try demoRequest(gateway).get()
    } catch {
        Benchmark(name) { benchmark in benchmark.error("set-up: \(error)") }
        return
    }
    let samples = Tally()
    Benchmark(name) { benchmark in
        if let problem = measure(benchmark, gateway, request) { return benchmark.error(problem) }
        benchmark.stopMeasurement()
        samples.add(1)
        guard settlesRequests else { return }
        let settled = Int64(samples.value * benchmark.scaledIterations.count)
        if let problem = checkTotals(gateway, lane: Lane(0), requests: settled) { benchmark.error(problem) }
    }
}

enum LaneChoice {
    /// Every thread uses lane 0 (the demo key, its team, gpt-4o-mini).
    case shared
    /// Thread i uses lane i.
    case perThread
}

/// Registers a benchmark whose iteration is one batch of `requests` admit + settle calls split
/// over `threads` threads (the benchmark's own thread included), all released together. Reports
/// wall clock per request and `threadCPU`: the CPU time all threads spent in their shares, per
/// request. The contended set-up first checks exact admission at a limit under contention.
func batchBenchmark(_ name: String, threads: Int, requests: Int, lanes: LaneChoice) {
    let gateway: Gateway
    let base: QuotaRequest
    do {
        gateway = try makeGateway()
        base = try demoRequest(gateway).get()
    } catch {
        Benchmark(name) { benchmark in benchmark.error("set-up: \(error)") }
        return
    }
    let perThread = shares(of: requests, over: threads)
    let laneOf: [Int] = (0..<threads).map { lanes == .shared ? 0 : $0 }
    let laneRequests = laneOf.map { laneRequest(base, $0) }
    let runner = BatchRunner(participants: threads) { index in
        let request = laneRequests[index]
        var refused = 0
        for _ in 0..<perThread[index] {
            if !admitSettle(gateway, request) { refused += 1 }
        }
        return refused
    }
    let threadCPU = BenchmarkMetric.custom("threadCPU (ns)")
    var configuration = Benchmark.defaultConfiguration
    configuration.metrics.append(threadCPU)

    let batches = Tally()
    Benchmark(
        name, configuration: configuration,
        closure: { benchmark in
            let cpu = runner.run()
            benchmark.stopMeasurement()
            benchmark.measurement(threadCPU, cpu)
            batches.add(1)
            if runner.refusedCount > 0 { return benchmark.error("\(runner.refusedCount) requests refused") }
            // Per lane: the requests its threads settled in all batches so far, warm-up included.
            var settled: [Int: Int] = [:]
            for index in 0..<threads { settled[laneOf[index], default: 0] += perThread[index] * batches.value }
            for (lane, count) in settled where count > 0 {
                if let problem = checkTotals(gateway, lane: Lane(lane), requests: Int64(count)) {
                    return benchmark.error("after \(batches.value) batches on \(threads) threads: \(problem)")
                }
            }
        },
        setup: {
            if requests > 0, threads > 1, lanes == .shared, let problem = contendedAdmissionProblem(threads: threads) {
                throw BenchmarkSetupError("admission under contention: \(problem)")
            }
            runner.start()
        },
        teardown: { runner.stop() })
}
