// The overspend bound of FleetLeases.md, checked by simulation: N Envoys (3 to 8) with random
// request rates, sizes, durations and estimate errors admit against their LeaseBooks and renew
// through the real LeaseLedger (in process, on a simulated clock), while partitions cut Envoys off
// (some longer than the lease's TTL, some losing only the answer) and one Envoy dies with leases
// and requests out. Whatever happens, the total charged in the window stays within
//
//     limit + D + R + F
//
// D: Σ over admitted requests of max(0, actual − estimate) (the estimate error);
// R: the slice units the ledger reclaimed from holders past their expiry (`totals.reclaimed`);
// F: Σ of the estimates admitted by fail_open (at most the local cap per Envoy and window).
//
// And when demand exceeds the limit, the fleet uses nearly all of it (utilisation).
import SluiceAdmin
import SluiceCore
import Testing

/// Reproducible pseudo-random numbers (SplitMix64).
struct SimulationRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

struct FleetSimulation {
    struct InFlight {
        var ticket: LeaseTicket
        var actual: Int64
        var doneAtMillis: Int64
    }

    final class Envoy {
        let holder: LeaseHolder
        let book: LeaseBook
        let slot: LeaseSlot
        /// Requests per second this Envoy's clients send.
        let rate: Double
        var inFlight: [InFlight] = []
        var partitionedUntil: Int64 = 0
        var dead = false
        var nextTickMillis: Int64

        init(holder: LeaseHolder, book: LeaseBook, slot: LeaseSlot, rate: Double, firstTick: Int64) {
            self.holder = holder
            self.book = book
            self.slot = slot
            self.rate = rate
            nextTickMillis = firstTick
        }
    }

    struct Outcome {
        var limit: Int64
        var charged: Int64 = 0
        var estimateError: Int64 = 0
        var failOpenEstimates: Int64 = 0
        var reclaimed: Int64 = 0
        var reclaimedLeases: Int64 = 0
        var demand: Int64 = 0
        var partitions = 0
        var lostAnswers = 0
        var replays: Int64 = 0
        var bound: Int64 { limit + estimateError + reclaimed + failOpenEstimates }

        var summary: String {
            "charged \(charged) of limit \(limit) (\(charged * 1000 / limit)‰), bound \(bound): D \(estimateError), "
                + "R \(reclaimed) in \(reclaimedLeases) reclaims, F \(failOpenEstimates); demand \(demand), "
                + "\(partitions) partitions, \(lostAnswers) lost answers, \(replays) replays"
        }
    }

    static let key = LeaseKey(.team("payments"), .costPerDay)
    /// 2025-12-05 00:10 UTC: the whole run stays in one day.
    static let start: Int64 = 1_764_893_400_000

    static func run(
        seed: UInt64, envoys count: Int, limit: Int64, policy: LeaseFailurePolicy, seconds: Int64 = 300,
        partitionChancePerTick: Double = 0.03
    ) -> Outcome {
        var random = SimulationRandom(state: seed)
        var ledger = LeaseLedger(settings: LeaseLedgerSettings(ttlMillis: 10_000), limits: LeaseLimits([key: limit]))
        let settings = LeaseBookSettings(horizonMillis: 3_000, marginMillis: 1_000)
        var envoys: [Envoy] = []
        for index in 0..<count {
            let slot = LeaseSlot(key: key, limit: limit, policy: policy)
            let holder = LeaseHolder(envoy: "envoy-\(index)", boot: "1")
            envoys.append(
                Envoy(
                    holder: holder, book: LeaseBook(envoy: holder.envoy, boot: "1", slots: [slot], settings: settings),
                    slot: slot, rate: Double.random(in: 2...20, using: &random),
                    firstTick: Int64.random(in: 0..<1_000, using: &random)))
        }
        let deathAt = Int64.random(in: 20_000...120_000, using: &random)
        var outcome = Outcome(limit: limit)
        let step: Int64 = 20
        var now: Int64 = 0
        while now < seconds * 1_000 {
            let wall = start + now
            let mono = now * 1_000_000
            for (index, envoy) in envoys.enumerated() where !envoy.dead {
                if index == 0 && now >= deathAt {
                    // Killed: its in-flight requests still cost what they cost upstream, but are
                    // never settled or reported; its slice stays in the ledger until it expires.
                    for request in envoy.inFlight { outcome.charged += request.actual }
                    envoy.inFlight = []
                    envoy.dead = true
                    continue
                }
                // Finished requests settle their actual usage.
                envoy.inFlight.removeAll { request in
                    guard request.doneAtMillis <= now else { return false }
                    envoy.slot.settle(request.ticket, actual: request.actual)
                    outcome.charged += request.actual
                    return true
                }
                // New requests: Poisson-ish arrivals at the Envoy's rate.
                var arrivals = 0
                let expected = envoy.rate * Double(step) / 1_000
                if Double.random(in: 0..<1, using: &random) < expected { arrivals = 1 }
                for _ in 0..<arrivals {
                    let estimate = Int64.random(in: 100...3_000, using: &random)
                    outcome.demand += estimate
                    guard case .admitted(let ticket) = envoy.slot.admit(estimate, nowMillis: wall, nowNanos: mono) else {
                        continue
                    }
                    // Actual usage from half the estimate to 20% above it.
                    let actual = estimate * Int64.random(in: 50...120, using: &random) / 100
                    outcome.estimateError += max(0, actual - estimate)
                    if ticket.failOpen { outcome.failOpenEstimates += estimate }
                    envoy.inFlight.append(
                        InFlight(ticket: ticket, actual: actual, doneAtMillis: now + Int64.random(in: 0...5_000, using: &random)))
                }
                // The background worker's timer, once a second.
                if now >= envoy.nextTickMillis {
                    envoy.nextTickMillis += 1_000
                    if now >= envoy.partitionedUntil && Double.random(in: 0..<1, using: &random) < partitionChancePerTick {
                        // Cut off for 2 to 30 s: longer than the TTL (10 s) about two times in three.
                        envoy.partitionedUntil = now + Int64.random(in: 2_000...30_000, using: &random)
                        outcome.partitions += 1
                    }
                    guard now >= envoy.partitionedUntil,
                        let request = envoy.book.nextRequest(nowMillis: wall, nowNanos: mono)
                    else { continue }
                    let answer = ledger.apply(holder: envoy.holder, seq: request.seq, items: request.items, nowMillis: wall)
                    if Double.random(in: 0..<1, using: &random) < 0.05 {
                        outcome.lostAnswers += 1  // sluiced applied it, the answer never arrived
                    } else {
                        envoy.book.apply(answer.grants, seq: request.seq, sentAtNanos: mono)
                    }
                }
            }
            now += step
        }
        // Let every surviving request finish.
        for envoy in envoys where !envoy.dead {
            for request in envoy.inFlight {
                envoy.slot.settle(request.ticket, actual: request.actual)
                outcome.charged += request.actual
            }
        }
        outcome.reclaimed = ledger.totals.reclaimed(.costPerDay)
        outcome.reclaimedLeases = ledger.totals.reclaimedLeases
        outcome.replays = ledger.totals.replays
        return outcome
    }
}

@Suite("Lease simulation")
struct LeaseSimulationTests {
    @Test("fail_closed: the fleet never charges beyond limit + estimate error + reclaimed slices, and uses the limit",
        arguments: 3...8)
    func failClosed(envoys: Int) {
        for seed in 1...3 {
            let limit: Int64 = 2_000_000
            let outcome = FleetSimulation.run(
                seed: UInt64(envoys * 100 + seed), envoys: envoys, limit: limit, policy: .failClosed)
            print("lease simulation, fail_closed, \(envoys) Envoys, seed \(seed): \(outcome.summary)")
            #expect(outcome.demand > 2 * limit, "the run must ask for more than the limit")
            #expect(outcome.partitions > 0)
            #expect(
                outcome.charged <= outcome.bound,
                "charged \(outcome.charged) > bound \(outcome.bound) (D \(outcome.estimateError), R \(outcome.reclaimed))")
            // Utilisation: the budget is used up to the last percent or two.
            #expect(
                outcome.charged >= limit * 97 / 100,
                "charged only \(outcome.charged) of \(limit) with demand \(outcome.demand)")
            // The reclaimed term is what the partitions and the dead Envoy held, not a free pass:
            // far below the limit itself.
            #expect(outcome.reclaimed < limit / 2, "reclaimed \(outcome.reclaimed)")
            #expect(outcome.failOpenEstimates == 0)
        }
    }

    @Test("fail_open: partitions add at most the local cap per Envoy", arguments: [3, 5, 8])
    func failOpen(envoys: Int) {
        let limit: Int64 = 2_000_000
        let cap: Int64 = 50_000
        let outcome = FleetSimulation.run(
            seed: UInt64(envoys * 7919), envoys: envoys, limit: limit, policy: .failOpen(localCap: cap),
            partitionChancePerTick: 0.05)
        print("lease simulation, fail_open, \(envoys) Envoys: \(outcome.summary)")
        #expect(outcome.failOpenEstimates > 0, "some partition should have outlasted a lease")
        #expect(outcome.failOpenEstimates <= Int64(envoys) * cap)
        #expect(outcome.charged <= outcome.bound, "charged \(outcome.charged) > bound \(outcome.bound)")
        #expect(outcome.charged >= limit * 97 / 100)
    }

    @Test("no partitions, no deaths, exact estimates: the limit holds to the unit")
    func exact() {
        // With actual == estimate (no D), nobody cut off (no R) and fail_closed (no F), the
        // bound is the limit itself.
        let limit: Int64 = 100_000
        var ledger = LeaseLedger(limits: LeaseLimits([FleetSimulation.key: limit]))
        let slots = (0..<4).map { _ in LeaseSlot(key: FleetSimulation.key, limit: limit, policy: .failClosed) }
        let books = slots.enumerated().map { LeaseBook(envoy: "e\($0.offset)", boot: "1", slots: [$0.element]) }
        var charged: Int64 = 0
        var random = SimulationRandom(state: 42)
        for tick in 0..<200 {
            let wall = FleetSimulation.start + Int64(tick) * 100
            let mono = Int64(tick) * 100_000_000
            for (index, slot) in slots.enumerated() {
                for _ in 0..<5 {
                    let amount = Int64.random(in: 1...500, using: &random)
                    if case .admitted(let ticket) = slot.admit(amount, nowMillis: wall, nowNanos: mono) {
                        slot.settle(ticket, actual: amount)
                        charged += amount
                    }
                }
                if tick % 10 == index, let request = books[index].nextRequest(nowMillis: wall, nowNanos: mono) {
                    let holder = LeaseHolder(envoy: "e\(index)", boot: "1")
                    let answer = ledger.apply(holder: holder, seq: request.seq, items: request.items, nowMillis: wall)
                    books[index].apply(answer.grants, seq: request.seq, sentAtNanos: mono)
                }
            }
        }
        #expect(charged <= limit)
        #expect(charged >= limit * 95 / 100)
        #expect(ledger.totals.reclaimed(.costPerDay) == 0)
    }
}
