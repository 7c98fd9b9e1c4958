// Fleet leases inside `LocalQuotaStore`: when the process has a `LeaseBook` (the module's
// background worker runs with `leases` on), every limited quantity of every configured scope also
// admits against its `LeaseSlot`, after the local counters (which keep smoothing each Envoy's own
// per-minute burst, as FleetLeases.md says). A request is admitted only when both admit; the
// slots' tickets ride in the `AdmissionTicket` and are settled with the actual usage (or released
// with zero) exactly when the local reservation is.
//
// Without a book nothing here runs: the store holds no slots and the admit path takes one nil
// check per request.

import Synchronization

/// What the filter does for a scope when sluiced is unreachable past its lease: the config's
/// form of `LeaseFailurePolicy`, whose local cap depends on each dimension's limit.
public enum LeaseFailureConfig: Sendable, Equatable {
    /// Refuse with 429 `quota_unavailable`.
    case failClosed
    /// Admit on this Envoy alone up to this percentage of the limit per window (per dimension,
    /// at least one unit), then refuse with 429 `quota_unavailable`.
    case failOpen(localCapPercent: Double)

    /// The default of a filter config that states none: fail_open with 10 % of each limit per Envoy.
    public static let standard = LeaseFailureConfig.failOpen(localCapPercent: 10)

    /// The policy of one dimension whose limit is `limit`.
    public func policy(limit: Int64) -> LeaseFailurePolicy {
        switch self {
        case .failClosed: return .failClosed
        case .failOpen(let percent):
            let cap = (Double(max(0, limit)) * percent / 100).rounded(.up)
            return .failOpen(localCap: max(1, cap.isFinite ? Int64(min(cap, Double(LeaseSlot.maxAmount))) : 1))
        }
    }

    /// Reads `{"policy": "fail_closed"}` or `{"policy": "fail_open", "local_cap_percent": 10}`
    /// under `key`, if present.
    public static func read(_ parent: inout ConfigObject, _ key: String) throws(ConfigError) -> LeaseFailureConfig? {
        guard var object = try parent.optionalObject(key) else { return nil }
        let policy = try object.nonEmptyString("policy")
        let percent = try object.optionalDouble("local_cap_percent", in: 0...100)
        let result: LeaseFailureConfig
        switch policy {
        case "fail_closed":
            guard percent == nil else {
                throw ConfigError(path: object.childPath("local_cap_percent"), problem: "applies only to policy \"fail_open\"")
            }
            result = .failClosed
        case "fail_open":
            guard let percent else {
                throw ConfigError(
                    path: object.childPath("local_cap_percent"),
                    problem: "required with policy \"fail_open\": the share of each limit (0 < x ≤ 100) this Envoy may admit per window while sluiced is unreachable")
            }
            guard percent > 0 else {
                throw ConfigError(path: object.childPath("local_cap_percent"), problem: "must be above 0 (use policy \"fail_closed\" to refuse)")
            }
            result = .failOpen(localCapPercent: percent)
        default:
            throw ConfigError(
                path: object.childPath("policy"), problem: "must be \"fail_open\" or \"fail_closed\", got \"\(policy.prefix(64))\"")
        }
        try object.finish()
        return result
    }
}

/// How a `LocalQuotaStore` reaches the fleet's leases.
public struct QuotaLeaseOptions: Sendable {
    public let book: LeaseBook
    /// The failure policy of each scope that states one; the others take `defaultFailure`.
    public let failure: [QuotaScope: LeaseFailureConfig]
    public let defaultFailure: LeaseFailureConfig
    /// The monotonic clock (nanoseconds) lease expiries are timed on: the one the worker passes
    /// to `LeaseBook.apply`.
    public let monotonicNanos: @Sendable () -> Int64

    public init(
        book: LeaseBook, failure: [QuotaScope: LeaseFailureConfig] = [:], defaultFailure: LeaseFailureConfig = .standard,
        monotonicNanos: @escaping @Sendable () -> Int64
    ) {
        self.book = book
        self.failure = failure
        self.defaultFailure = defaultFailure
        self.monotonicNanos = monotonicNanos
    }
}

/// The slots one store acquired; given back to the book when the store goes away.
final class LeaseRegistration: Sendable {
    let book: LeaseBook
    let keys: [LeaseKey]

    init(book: LeaseBook, keys: [LeaseKey]) {
        self.book = book
        self.keys = keys
    }

    deinit { book.release(keys) }
}

/// The lease slots of one scope, one per limited dimension.
final class ScopeLeaseSlots: Sendable {
    let scope: QuotaScope
    let requests: LeaseSlot?
    let tokens: LeaseSlot?
    let inputTokens: LeaseSlot?
    let outputTokens: LeaseSlot?
    let costDay: LeaseSlot?
    let costMonth: LeaseSlot?

    init(scope: QuotaScope, slots: [LeaseKey: LeaseSlot]) {
        self.scope = scope
        requests = slots[LeaseKey(scope, .requestsPerMinute)]
        tokens = slots[LeaseKey(scope, .tokensPerMinute)]
        inputTokens = slots[LeaseKey(scope, .inputTokensPerMinute)]
        outputTokens = slots[LeaseKey(scope, .outputTokensPerMinute)]
        costDay = slots[LeaseKey(scope, .costPerDay)]
        costMonth = slots[LeaseKey(scope, .costPerMonth)]
    }

    /// The (key, limit, policy) of every dimension `limits` limits, for `LeaseBook.acquire`.
    static func wanted(
        _ scope: QuotaScope, _ limits: QuotaLimits, _ failure: LeaseFailureConfig
    ) -> [(key: LeaseKey, limit: Int64, policy: LeaseFailurePolicy)] {
        LeaseDimension.allCases.compactMap { dimension in
            guard let limit = dimension.limit(in: limits) else { return nil }
            return (LeaseKey(scope, dimension), limit, failure.policy(limit: limit))
        }
    }

    /// Admits the estimate against every slot, all or nothing.
    func admit(_ estimate: QuotaEstimate, nowMillis: Int64, nowNanos: Int64) -> Result<ScopeLeaseTickets, QuotaDenialError> {
        var tickets = ScopeLeaseTickets(slots: self)
        var cause: QuotaDenialCause?
        func take(_ slot: LeaseSlot?, _ amount: Int64, _ dimension: QuotaDimension, _ ticket: inout LeaseTicket?) -> Bool {
            guard let slot else { return true }
            switch slot.admit(amount, nowMillis: nowMillis, nowNanos: nowNanos) {
            case .admitted(let admitted):
                ticket = admitted
                return true
            case .denied(let denial):
                cause = Self.cause(denial, slot, scope, dimension, amount)
                return false
            }
        }
        let admitted =
            take(requests, 1, .requestsPerMinute, &tickets.requests)
            && take(tokens, estimate.totalTokens, .tokensPerMinute, &tickets.tokens)
            && take(inputTokens, estimate.inputTokens, .inputTokensPerMinute, &tickets.inputTokens)
            && take(outputTokens, estimate.outputTokens, .outputTokensPerMinute, &tickets.outputTokens)
            && take(costDay, estimate.costMicros, .budgetPerDay, &tickets.costDay)
            && take(costMonth, estimate.costMicros, .budgetPerMonth, &tickets.costMonth)
        if admitted { return .success(tickets) }
        tickets.settle(requests: 0, input: 0, output: 0, costMicros: 0)
        guard let cause else { return .success(tickets) }  // unreachable: a refusal always says why
        return .failure(QuotaDenialError(cause: cause))
    }

    @inline(never)
    private static func cause(
        _ denial: LeaseDenial, _ slot: LeaseSlot, _ scope: QuotaScope, _ dimension: QuotaDimension, _ amount: Int64
    ) -> QuotaDenialCause {
        switch denial {
        case .limitReached(let limit, let consumed, let retryAfterMillis):
            // The same 429 as a local quota: the fleet's limit and what it reported spent.
            return QuotaDenialCause(
                scope: scope, dimension: dimension, limit: limit, used: consumed, requested: amount,
                retryAfterMillis: retryAfterMillis)
        case .unavailable, .localCapReached:
            return QuotaDenialCause(
                scope: scope, dimension: dimension, limit: slot.limit, used: 0, requested: amount,
                retryAfterMillis: 1_000, leaseError: denial.unavailableError(slot.key))
        }
    }
}

/// What one scope admitted against its lease slots for one request; settled exactly once.
struct ScopeLeaseTickets: Sendable {
    let slots: ScopeLeaseSlots
    var requests: LeaseTicket?
    var tokens: LeaseTicket?
    var inputTokens: LeaseTicket?
    var outputTokens: LeaseTicket?
    var costDay: LeaseTicket?
    var costMonth: LeaseTicket?

    init(slots: ScopeLeaseSlots) {
        self.slots = slots
    }

    /// Replaces every reservation by the actual amounts (all zero releases).
    func settle(requests: Int64, input: Int64, output: Int64, costMicros: Int64) {
        if let ticket = self.requests { slots.requests?.settle(ticket, actual: requests) }
        if let ticket = tokens { slots.tokens?.settle(ticket, actual: input &+ output) }
        if let ticket = inputTokens { slots.inputTokens?.settle(ticket, actual: input) }
        if let ticket = outputTokens { slots.outputTokens?.settle(ticket, actual: output) }
        if let ticket = costDay { slots.costDay?.settle(ticket, actual: costMicros) }
        if let ticket = costMonth { slots.costMonth?.settle(ticket, actual: costMicros) }
    }
}

/// The process's lease book, published by the module's background worker (when its config turns
/// leases on) for the filter configs built after it. Read at config time only: a config keeps the
/// slots it acquired, so the admit path never reads this word.
public enum ProcessLeaseBook {
    private static let published = Mutex<LeaseBook?>(nil)

    public static var current: LeaseBook? { published.withLock { $0 } }

    public static func publish(_ book: LeaseBook) { published.withLock { $0 = book } }

    /// The worker is going away: configs built from now on keep local quotas only.
    public static func withdraw() { published.withLock { $0 = nil } }
}
