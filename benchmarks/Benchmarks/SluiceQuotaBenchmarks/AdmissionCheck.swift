// A set-up check of the contended benchmarks, not measured: with every thread hammering the same
// key at a limit, admission must stop exactly at that limit and the store must account exactly
// for what it admitted, settled and rolled back. The benchmarks themselves never reach a limit,
// so this is where an overspend under contention would show.
import SluiceCore
import Synchronization

/// Runs the three checks on `threads` threads at once; a description of the first failure, or nil.
func contendedAdmissionProblem(threads: Int) -> String? {
    let now = nowMillis
    let key = QuotaScope.key("k")
    let model = QuotaScope.model("m")
    let attempts = 4_000

    // 1. Requests per minute: exactly `limit` admissions, whatever the interleaving.
    do {
        let store = LocalQuotaStore(limits: [key: QuotaLimits(requestsPerMinute: 1_000)])
        let request = QuotaRequest(key: "k", model: "m", estimate: QuotaEstimate(inputTokens: 0, outputTokens: 0))
        let admitted = admissions(store, request, now: now, threads: threads, attempts: attempts)
        let used = store.used(key, .requestsPerMinute, now: now)
        if admitted != 1_000 || used != 1_000 {
            return "requests_per_minute 1000, \(threads)×\(attempts) attempts: \(admitted) admitted, counter \(used ?? -1)"
        }
    }

    // 2. A day budget of $1 at 192 µ$ per estimate: exactly 5,208 reservations (999,936 µ$); then
    //    the threads settle their own tickets at 39 µ$ each, all at once.
    do {
        let store = LocalQuotaStore(limits: [key: QuotaLimits(budgetMicrosPerDay: 1_000_000)])
        let request = QuotaRequest(
            key: "k", model: "m", estimate: QuotaEstimate(inputTokens: 0, outputTokens: 0, costMicros: 192))
        let tickets = TicketShelf(threads)
        runTogether(threads: threads) { index in
            var mine: [AdmissionTicket] = []
            for _ in 0..<attempts {
                if case .admitted(let ticket) = store.admit(request, now: now) { mine.append(ticket) }
            }
            tickets.put(mine, at: index)
        }
        let admitted = tickets.count
        let reserved = store.used(key, .budgetPerDay, now: now) ?? -1
        runTogether(threads: threads) { index in
            for ticket in tickets.take(at: index) {
                store.settle(ticket, actual: TokenUsage(), costMicros: 39, now: now)
            }
        }
        let spent = store.used(key, .budgetPerDay, now: now) ?? -1
        if admitted != 5_208 || reserved != 5_208 * 192 || spent != 5_208 * 39 {
            return "budget_usd_per_day 1 at 192 µ$ per estimate: \(admitted) admitted (5208 expected), "
                + "\(reserved) µ$ reserved, \(spent) µ$ after settling each at 39"
        }
    }

    // 3. Rollback: the key admits everything, the model refuses beyond 195 estimates of 512 tokens
    //    (100,000 tokens a minute); each refusal must give the key its reservation back.
    do {
        let store = LocalQuotaStore(limits: [
            key: QuotaLimits(requestsPerMinute: 100_000_000, tokensPerMinute: 10_000_000_000),
            model: QuotaLimits(tokensPerMinute: 100_000),
        ])
        let request = QuotaRequest(key: "k", model: "m", estimate: QuotaEstimate(inputTokens: 256, outputTokens: 256))
        let admitted = admissions(store, request, now: now, threads: threads, attempts: attempts)
        let keyRequests = store.used(key, .requestsPerMinute, now: now)
        let keyTokens = store.used(key, .tokensPerMinute, now: now)
        let modelTokens = store.used(model, .tokensPerMinute, now: now)
        if admitted != 195 || keyRequests != 195 || keyTokens != 195 * 512 || modelTokens != 195 * 512 {
            return "model tokens_per_minute 100000 at 512 per estimate: \(admitted) admitted (195 expected); "
                + "key counts \(keyRequests ?? -1) requests and \(keyTokens ?? -1) tokens, model \(modelTokens ?? -1) tokens"
        }
    }
    return nil
}

/// How many of `attempts` admissions per thread succeed, with `threads` threads at once.
private func admissions(_ store: LocalQuotaStore, _ request: QuotaRequest, now: Int64, threads: Int, attempts: Int) -> Int {
    let admitted = Tally()
    runTogether(threads: threads) { _ in
        var mine = 0
        for _ in 0..<attempts {
            if case .admitted = store.admit(request, now: now) { mine += 1 }
        }
        admitted.add(mine)
    }
    return admitted.value
}

/// A count several threads add to.
final class Tally: Sendable {
    private let count = Atomic<Int>(0)
    func add(_ amount: Int) { count.wrappingAdd(amount, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

/// Each thread's tickets, for settling them in a second round.
final class TicketShelf: Sendable {
    private let slots: Mutex<[[AdmissionTicket]]>
    init(_ threads: Int) { slots = Mutex(Array(repeating: [], count: threads)) }
    func put(_ tickets: [AdmissionTicket], at index: Int) { slots.withLock { $0[index] = tickets } }
    func take(at index: Int) -> [AdmissionTicket] { slots.withLock { $0[index] } }
    var count: Int { slots.withLock { $0.reduce(0) { $0 + $1.count } } }
}
