// Many threads on one key: the lock-free counters lose no update, and admission never lets more
// through than the limit plus what is in flight.

import Dispatch
import Synchronization
import Testing

@testable import SluiceCore

@Suite struct QuotaConcurrencyTests {
    static let threads = 8
    static let now: Int64 = 1_750_000_000_000

    @Test func aBurstAdmitsExactlyTheLimit() {
        let counter = RateCounter(limit: 10_000)
        let admitted = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: Self.threads) { _ in
            var mine = 0
            for _ in 0..<2_000 {
                if case .reserved = counter.reserve(1, nowNanos: Self.now * 1_000_000) { mine += 1 }
            }
            admitted.add(mine, ordering: .relaxed)
        }
        #expect(admitted.load(ordering: .relaxed) == 10_000)
        #expect(counter.used(nowNanos: Self.now * 1_000_000) == 10_000)
    }

    /// With actual usage never above the estimate, the key's level never passes its limit, and when
    /// everything has settled it equals the sum of the actual usage, to the token and the micro-dollar.
    @Test func admitSettleReleaseFromEightThreadsAccountsExactly() {
        let limit: Int64 = 600_000
        let budget: Int64 = 2_000_000_000
        let store = LocalQuotaStore(limits: [
            .key("app"): QuotaLimits(requestsPerMinute: 60_000, tokensPerMinute: limit, budgetMicrosPerDay: budget),
            .team("t"): QuotaLimits(tokensPerMinute: 6_000_000),
        ])
        let settledTokens = Atomic<Int64>(0)
        let settledMicros = Atomic<Int64>(0)
        let admitted = Atomic<Int>(0)
        let overLimitSeen = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: Self.threads) { thread in
            var random = SplitMix64(seed: UInt64(thread) &+ 0xC0FFEE)
            var tickets: [(AdmissionTicket, TokenUsage, Int64)] = []
            for _ in 0..<3_000 {
                let input = Int64.random(in: 1...200, using: &random)
                let output = Int64.random(in: 0...200, using: &random)
                let cost = Int64.random(in: 0...5000, using: &random)
                let request = QuotaRequest(
                    key: "app", team: "t", model: "m",
                    estimate: QuotaEstimate(inputTokens: input, outputTokens: output, costMicros: cost))
                if case .admitted(let ticket) = store.admit(request, now: Self.now) {
                    admitted.add(1, ordering: .relaxed)
                    let actual = TokenUsage(
                        inputTokens: Int(Int64.random(in: 0...input, using: &random)),
                        outputTokens: Int(Int64.random(in: 0...output, using: &random)))
                    tickets.append((ticket, actual, Int64.random(in: 0...cost, using: &random)))
                }
                if let used = store.used(.key("app"), .tokensPerMinute, now: Self.now), used > limit {
                    overLimitSeen.add(1, ordering: .relaxed)
                }
                // Resolve a random share of the in-flight tickets, keeping some in flight.
                while tickets.count > Int.random(in: 0...4, using: &random) {
                    let (ticket, actual, micros) = tickets.removeLast()
                    if Bool.random(using: &random) {
                        store.settle(ticket, actual: actual, costMicros: micros, now: Self.now)
                        settledTokens.add(Int64(actual.totalTokens), ordering: .relaxed)
                        settledMicros.add(micros, ordering: .relaxed)
                    } else {
                        store.release(ticket, now: Self.now)
                    }
                }
            }
            for (ticket, _, _) in tickets { store.release(ticket, now: Self.now) }
        }
        #expect(admitted.load(ordering: .relaxed) > 100)
        #expect(overLimitSeen.load(ordering: .relaxed) == 0)
        #expect(store.used(.key("app"), .tokensPerMinute, now: Self.now) == settledTokens.load(ordering: .relaxed))
        #expect(store.used(.team("t"), .tokensPerMinute, now: Self.now) == settledTokens.load(ordering: .relaxed))
        #expect(store.used(.key("app"), .budgetPerDay, now: Self.now) == settledMicros.load(ordering: .relaxed))
        #expect(store.used(.key("app"), .requestsPerMinute, now: Self.now) ?? 0 <= 60_000)
    }

    /// Usage above the estimate can push a key over its limit, but only by what was in flight: the
    /// level never exceeds the limit plus the overage of tickets settled while others were admitted.
    @Test func overageIsBoundedByInFlightEstimates() {
        let limit: Int64 = 60_000
        let store = LocalQuotaStore(limits: [.key("app"): QuotaLimits(tokensPerMinute: limit)])
        let settledTokens = Atomic<Int64>(0)
        DispatchQueue.concurrentPerform(iterations: Self.threads) { thread in
            var random = SplitMix64(seed: UInt64(thread) &+ 77)
            for _ in 0..<2_000 {
                let estimate = Int64.random(in: 1...100, using: &random)
                let request = QuotaRequest(
                    key: "app", model: "m", estimate: QuotaEstimate(inputTokens: estimate, outputTokens: 0))
                guard case .admitted(let ticket) = store.admit(request, now: Self.now) else { continue }
                // Actual up to twice the estimate.
                let actual = Int.random(in: 0...Int(2 * estimate), using: &random)
                store.settle(ticket, actual: TokenUsage(inputTokens: actual), costMicros: 0, now: Self.now)
                settledTokens.add(Int64(actual), ordering: .relaxed)
            }
        }
        let used = store.used(.key("app"), .tokensPerMinute, now: Self.now) ?? -1
        #expect(used == settledTokens.load(ordering: .relaxed))
        // Each thread has at most one ticket in flight (estimate <= 100, overage <= 100): every
        // admission saw level <= limit, so the final level is below limit + 8 × 100 + 8 × 100.
        #expect(used <= limit + Int64(Self.threads) * 200)
    }
}
