// A fixed-seed fuzz loop of random admit/settle/release sequences against a model of what the
// counters must hold: never below zero, and always exactly the settled actuals plus the estimates
// still in flight; budgets per UTC day and calendar month across many boundaries.

import Testing

@testable import SluiceCore

@Suite struct QuotaFuzzTests {
    struct Flight {
        var ticket: AdmissionTicket
        var scopes: [QuotaScope]
    }

    /// Exact expectations for one scope within one episode (fixed `now`).
    struct Expected {
        var requests: Int64 = 0
        var tokens: Int64 = 0
        var input: Int64 = 0
        var output: Int64 = 0
        var dayMicros: Int64 = 0
    }

    /// Runs in an exit test: a trap fails this test alone instead of the whole suite.
    @Test func randomSequencesKeepCountersExact() async {
        await #expect(processExitsWith: .success) { QuotaFuzzTests.randomSequencesKeepCountersExactRun() }
    }

    static func randomSequencesKeepCountersExactRun() {
        var random = SplitMix64(seed: 0x5EED_0FA7)
        // Limits that divide a minute in nanoseconds, so the expected values are exact.
        let rates: [Int64] = [10, 60, 600, 1000, 6000, 100_000, 1_000_000]
        let keys = ["a", "b", "c"]
        var limits: [QuotaScope: QuotaLimits] = [:]
        for name in keys {
            limits[.key(name)] = QuotaLimits(
                requestsPerMinute: rates.randomElement(using: &random),
                tokensPerMinute: rates.randomElement(using: &random),
                inputTokensPerMinute: Bool.random(using: &random) ? rates.randomElement(using: &random) : nil,
                outputTokensPerMinute: Bool.random(using: &random) ? rates.randomElement(using: &random) : nil,
                budgetMicrosPerDay: Int64.random(in: 0...2_000_000, using: &random),
                budgetMicrosPerMonth: Int64.random(in: 1_000_000...20_000_000, using: &random))
        }
        limits[.team("t")] = QuotaLimits(tokensPerMinute: 100_000, budgetMicrosPerDay: 3_000_000)
        limits[.model("m")] = QuotaLimits(requestsPerMinute: 6000, outputTokensPerMinute: 100_000)
        let store = LocalQuotaStore(limits: limits)

        var now: Int64 = 1_704_067_200_000 - 3 * UTCCalendar.millisPerDay  // late December 2023
        var monthSpent: [QuotaScope: [Int64: Int64]] = [:]
        var denials = 0
        var admissions = 0
        for _ in 0..<400 {
            // A new episode: more than a minute and at least a day later, so rates and daily budgets start empty.
            now += UTCCalendar.millisPerDay + Int64.random(in: 60_001...UTCCalendar.millisPerDay, using: &random)
            var expected: [QuotaScope: Expected] = [:]
            var flights: [Flight] = []
            let month = UTCCalendar.month(ofMillis: now)
            for _ in 0..<Int.random(in: 1...40, using: &random) {
                if flights.isEmpty || Int.random(in: 0..<3, using: &random) == 0 {
                    let key = keys.randomElement(using: &random) ?? "a"
                    let team: String? = Bool.random(using: &random) ? "t" : nil
                    let model = Bool.random(using: &random) ? "m" : "other"
                    let estimate = QuotaEstimate(
                        inputTokens: Int64.random(in: 0...3000, using: &random),
                        outputTokens: Int64.random(in: 0...2000, using: &random),
                        costMicros: Int64.random(in: 0...400_000, using: &random))
                    let request = QuotaRequest(key: key, team: team, model: model, estimate: estimate)
                    switch store.admit(request, now: now) {
                    case .admitted(let ticket):
                        admissions += 1
                        var scopes: [QuotaScope] = [.key(key)]
                        if let team { scopes.append(.team(team)) }
                        if limits[.model(model)] != nil { scopes.append(.model(model)) }
                        for scope in scopes {
                            expected[scope, default: Expected()].requests += 1
                            expected[scope, default: Expected()].tokens += estimate.totalTokens
                            expected[scope, default: Expected()].input += estimate.inputTokens
                            expected[scope, default: Expected()].output += estimate.outputTokens
                            expected[scope, default: Expected()].dayMicros += estimate.costMicros
                            monthSpent[scope, default: [:]][month, default: 0] += estimate.costMicros
                        }
                        flights.append(Flight(ticket: ticket, scopes: scopes))
                    case .denied(let denial):
                        denials += 1
                        #expect(denial.error.status == 429)
                        #expect(!denial.error.message.isEmpty)
                        if let seconds = denial.retryAfterSeconds { #expect(seconds >= 1) }
                    }
                } else {
                    let index = Int.random(in: 0..<flights.count, using: &random)
                    let flight = flights.remove(at: index)
                    let estimate = flight.ticket.estimate
                    let settle = Bool.random(using: &random)
                    let usage = TokenUsage(
                        inputTokens: Int.random(in: 0...4000, using: &random),
                        outputTokens: Int.random(in: 0...3000, using: &random))
                    let micros = Int64.random(in: 0...500_000, using: &random)
                    if settle {
                        store.settle(flight.ticket, actual: usage, costMicros: micros, now: now)
                    } else {
                        store.release(flight.ticket, now: now)
                    }
                    for scope in flight.scopes {
                        expected[scope, default: Expected()].requests += settle ? 0 : -1
                        expected[scope, default: Expected()].tokens +=
                            (settle ? Int64(usage.totalTokens) : 0) - estimate.totalTokens
                        expected[scope, default: Expected()].input +=
                            (settle ? Int64(usage.inputTokens) : 0) - estimate.inputTokens
                        expected[scope, default: Expected()].output +=
                            (settle ? Int64(usage.outputTokens) : 0) - estimate.outputTokens
                        expected[scope, default: Expected()].dayMicros += (settle ? micros : 0) - estimate.costMicros
                        monthSpent[scope, default: [:]][month, default: 0] +=
                            (settle ? micros : 0) - estimate.costMicros
                    }
                }
                check(store, expected, limits, monthSpent, now: now)
            }
            for flight in flights { store.release(flight.ticket, now: now) }
            for flight in flights {
                let estimate = flight.ticket.estimate
                for scope in flight.scopes {
                    expected[scope, default: Expected()].requests -= 1
                    expected[scope, default: Expected()].tokens -= estimate.totalTokens
                    expected[scope, default: Expected()].input -= estimate.inputTokens
                    expected[scope, default: Expected()].output -= estimate.outputTokens
                    expected[scope, default: Expected()].dayMicros -= estimate.costMicros
                    monthSpent[scope, default: [:]][month, default: 0] -= estimate.costMicros
                }
            }
            check(store, expected, limits, monthSpent, now: now)
        }
        #expect(admissions > 500)
        #expect(denials > 100)
    }

    static func check(
        _ store: LocalQuotaStore, _ expected: [QuotaScope: Expected], _ limits: [QuotaScope: QuotaLimits],
        _ monthSpent: [QuotaScope: [Int64: Int64]], now: Int64
    ) {
        let month = UTCCalendar.month(ofMillis: now)
        for (scope, scopeLimits) in limits {
            let want = expected[scope] ?? Expected()
            func compare(_ dimension: QuotaDimension, _ limit: Int64?, _ value: Int64) {
                let got = store.used(scope, dimension, now: now)
                #expect(got == (limit == nil ? nil : value), "\(scope) \(dimension)")
                #expect((got ?? 0) >= 0)
            }
            compare(.requestsPerMinute, scopeLimits.requestsPerMinute, want.requests)
            compare(.tokensPerMinute, scopeLimits.tokensPerMinute, want.tokens)
            compare(.inputTokensPerMinute, scopeLimits.inputTokensPerMinute, want.input)
            compare(.outputTokensPerMinute, scopeLimits.outputTokensPerMinute, want.output)
            compare(.budgetPerDay, scopeLimits.budgetMicrosPerDay, want.dayMicros)
            compare(.budgetPerMonth, scopeLimits.budgetMicrosPerMonth, monthSpent[scope]?[month] ?? 0)
        }
    }
}
