// Quota admission with fleet leases (issue 10): `Quota.admitSettle.single`'s admit + settle of the
// demo request on a gateway whose config was built with a `LeaseBook`, so each of the request's
// limited quantities (key, team and model: ten) also admits against its slot and settles it. Every
// slot holds a slice granted through the book's own request cycle, on the benchmark's frozen
// clocks; the difference to `Quota.admitSettle.single` in the same run is the lease check's cost.
import Benchmark
import BenchmarkFixtures
import SluiceCore

func leaseBenchmarks() {
    let name = "Quota.admitSettle.leases"
    let book = LeaseBook(envoy: "bench", boot: "1")
    let leaseNanos: Int64 = 1_000_000_000_000
    let gateway: Gateway
    let request: QuotaRequest
    do {
        gateway = Gateway(
            config: try GatewayConfig.parse(Array(filterConfig.utf8)), leaseBook: book, leaseClock: { leaseNanos })
        request = try demoRequest(gateway).get()
    } catch {
        Benchmark(name) { benchmark in benchmark.error("set-up: \(error)") }
        return
    }
    let setupProblem = grantEverySlot(book, nowNanos: leaseNanos)
    func failOpenAdmitted() -> Int64 { book.slots.reduce(0) { $0 + $1.counts.failOpenAdmitted } }
    let failOpenBefore = failOpenAdmitted()
    Benchmark(name) { benchmark in
        if let setupProblem { return benchmark.error(setupProblem) }
        var refused = 0
        for _ in benchmark.scaledIterations {
            if !admitSettle(gateway, request) { refused += 1 }
        }
        benchmark.stopMeasurement()
        if refused > 0 { return benchmark.error("\(refused) requests refused") }
        if failOpenAdmitted() != failOpenBefore { benchmark.error("requests were admitted by fail_open, not against a slice") }
    }
}

/// Gives every slot a slice far beyond any run's usage, valid for an hour of the frozen clock.
private func grantEverySlot(_ book: LeaseBook, nowNanos: Int64) -> String? {
    let slots = book.slots
    guard slots.count >= 10 else { return "the config acquired \(slots.count) lease slots, expected 10 or more" }
    for slot in slots {
        // Demand, so the book asks (a ticket fail_open admits is released at once).
        if case .admitted(let ticket) = slot.admit(1, nowMillis: nowMillis, nowNanos: nowNanos) { slot.settle(ticket, actual: 0) }
    }
    guard let ask = book.nextRequest(nowMillis: nowMillis, nowNanos: nowNanos) else { return "no lease request" }
    let grants = slots.map { slot in
        LeaseGrant(
            key: slot.key, window: slot.key.dimension.period.window(atMillis: nowMillis).id, granted: LeaseSlot.maxAmount,
            held: LeaseSlot.maxAmount, ttlMillis: 3_600_000, expiresAtMillis: 0, limit: slot.limit, consumed: 0,
            outstanding: LeaseSlot.maxAmount, remaining: 0, windowEndMillis: 0)
    }
    book.apply(grants, seq: ask.seq, sentAtNanos: nowNanos)
    return slots.allSatisfy { $0.isValid(nowNanos: nowNanos) } ? nil : "a slot holds no valid lease"
}
