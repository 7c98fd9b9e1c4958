// Admission, settlement and release of requests against every quota that applies to them.
//
// Flow per request: `admit` with an estimate (prompt bytes / 4, max_tokens) before the request goes
// upstream; then exactly one of `settle` (with the usage the response reported, streams included)
// or `release` (the request failed and used nothing). Admission is all-or-nothing across the
// key, team and model scopes: if the key admits and the team refuses, the key's reservation is
// rolled back before the denial is returned.
//
// `QuotaStore` is the seam for the daemon's global quota: a store that spends leases granted by
// `sluiced` can replace `LocalQuotaStore` without the filter changing. Callers should hold it as a
// generic (`some QuotaStore`), not an existential, on the request path.

/// What a quota applies to.
public struct QuotaScope: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: UInt8, Sendable, Hashable {
        /// A client (virtual) key, by its configured name.
        case key
        /// A team of keys.
        case team
        /// A model, across every key that uses it.
        case model
    }

    public var kind: Kind
    public var name: String

    public init(_ kind: Kind, _ name: String) {
        self.kind = kind
        self.name = name
    }

    public static func key(_ name: String) -> QuotaScope { QuotaScope(.key, name) }
    public static func team(_ name: String) -> QuotaScope { QuotaScope(.team, name) }
    public static func model(_ name: String) -> QuotaScope { QuotaScope(.model, name) }

    public var description: String {
        switch kind {
        case .key: "key \(name)"
        case .team: "team \(name)"
        case .model: "model \(name)"
        }
    }
}

/// One limited quantity of a scope.
public enum QuotaDimension: Sendable, Hashable, CaseIterable {
    case requestsPerMinute
    case tokensPerMinute
    case inputTokensPerMinute
    case outputTokensPerMinute
    case budgetPerDay
    case budgetPerMonth
}

/// What a request is expected to consume, reserved at admission and corrected at settlement.
public struct QuotaEstimate: Sendable, Equatable {
    public var inputTokens: Int64
    public var outputTokens: Int64
    /// Expected cost in micro-dollars (0 when the model has no price).
    public var costMicros: Int64

    /// Negative values count as zero; token counts are capped at 2^40 so sums cannot overflow.
    public init(inputTokens: Int64, outputTokens: Int64, costMicros: Int64 = 0) {
        self.inputTokens = min(max(0, inputTokens), RateCounter.maxAmount)
        self.outputTokens = min(max(0, outputTokens), RateCounter.maxAmount)
        self.costMicros = max(0, costMicros)
    }

    /// The usual estimate: a token per 4 bytes of request body (rounded up), `max_tokens` (or the
    /// gateway's default) of output, and their price at `price`.
    public init(bodyByteCount: Int, maxTokens: Int?, defaultMaxTokens: Int, price: ModelPrice? = nil) {
        let input = Int64(max(0, bodyByteCount) / 4 + (max(0, bodyByteCount) % 4 == 0 ? 0 : 1))
        let output = Int64(max(0, min(maxTokens ?? defaultMaxTokens, Int(RateCounter.maxAmount))))
        let cost =
            price?.cost(TokenUsage(inputTokens: Int(clamping: input), outputTokens: Int(clamping: output))) ?? 0
        self.init(inputTokens: input, outputTokens: output, costMicros: cost)
    }

    public var totalTokens: Int64 { inputTokens + outputTokens }
}

/// The scopes a request belongs to and its estimate.
public struct QuotaRequest: Sendable, Equatable {
    /// The client key's configured name.
    public var key: String
    /// The key's team, if it has one.
    public var team: String?
    /// The model as the client named it (the name limits and prices are configured under).
    public var model: String
    public var estimate: QuotaEstimate
    /// True when `key` names a run-time subject (a JWT `sub`) rather than a configured key: its
    /// counters come from the store's per-subject table.
    public var keyIsSubject: Bool

    public init(key: String, team: String? = nil, model: String, estimate: QuotaEstimate, keyIsSubject: Bool = false) {
        self.key = key
        self.team = team
        self.model = model
        self.estimate = estimate
        self.keyIsSubject = keyIsSubject
    }
}

/// Proof of an admission: what was reserved where. Settle or release it exactly once.
public struct AdmissionTicket: Sendable {
    public let estimate: QuotaEstimate
    /// Rate-limit headers as of admission, reservation included: send them on the response.
    public internal(set) var headers: RateLimitHeaders = RateLimitHeaders()
    var key: ScopeReservation?
    var team: ScopeReservation?
    var model: ScopeReservation?

    init(estimate: QuotaEstimate) {
        self.estimate = estimate
    }
}

/// Why a request was refused, in the client's 429 and its headers.
public struct QuotaDenial: Sendable, Equatable {
    public var scope: QuotaScope
    public var dimension: QuotaDimension
    /// The OpenAI-shaped error: status 429, type `requests`/`tokens`/`insufficient_quota`.
    public var error: GatewayError
    /// `nil` when waiting cannot help (the request alone is larger than the limit).
    public var retryAfterSeconds: Int64?
    /// Rate-limit headers including `retry-after`.
    public var headers: RateLimitHeaders
}

public enum QuotaDecision: Sendable {
    case admitted(AdmissionTicket)
    case denied(QuotaDenial)
}

/// Quota accounting the filter talks to; `LocalQuotaStore` keeps it in this process.
public protocol QuotaStore: Sendable {
    /// Reserves `request.estimate` in every scope that limits it, or nothing at all.
    func admit(_ request: QuotaRequest, now: Int64) -> QuotaDecision
    /// Replaces the ticket's reservation by the actual usage and cost (micro-dollars).
    func settle(_ ticket: AdmissionTicket, actual: TokenUsage, costMicros: Int64, now: Int64)
    /// Gives the ticket's reservation back: the request failed and used nothing.
    func release(_ ticket: AdmissionTicket, now: Int64)
    /// Current rate-limit headers for a request's scopes, without reserving anything.
    func rateLimitHeaders(for request: QuotaRequest, now: Int64) -> RateLimitHeaders
    /// The same for scopes named directly; `model` nil leaves the model's limits out (answers
    /// that involve no model, such as the model list).
    func rateLimitHeaders(key: String, keyIsSubject: Bool, team: String?, model: String?, now: Int64) -> RateLimitHeaders
}

/// An instant in both units the counters use, clamped to the range they handle.
struct QuotaInstant {
    let millis: Int64
    let nanos: Int64

    init(millis: Int64) {
        self.millis = min(max(0, millis), UTCCalendar.maxMillis)
        self.nanos = self.millis * 1_000_000
    }
}

/// The counters of one configured scope; created at config time, shared by all workers.
final class ScopeCounters: Sendable {
    let scope: QuotaScope
    let limits: QuotaLimits
    let requests: RateCounter?
    let tokens: RateCounter?
    let inputTokens: RateCounter?
    let outputTokens: RateCounter?
    let budgetDay: BudgetCounter?
    let budgetMonth: BudgetCounter?

    init(scope: QuotaScope, limits: QuotaLimits, previous: ScopeCounters?) {
        func rate(_ limit: Int64?, _ old: RateCounter?) -> RateCounter? {
            guard let limit else { return nil }
            // A bucket's state means "used × window / limit": it survives a reload only at the same limit.
            if let old, old.limit == limit { return old }
            return RateCounter(limit: limit)
        }
        func budget(_ limit: Int64?, _ period: BudgetPeriod, _ old: BudgetCounter?) -> BudgetCounter? {
            guard limit != nil else { return nil }
            return old ?? BudgetCounter(period: period)
        }
        self.scope = scope
        self.limits = limits
        requests = rate(limits.requestsPerMinute, previous?.requests)
        tokens = rate(limits.tokensPerMinute, previous?.tokens)
        inputTokens = rate(limits.inputTokensPerMinute, previous?.inputTokens)
        outputTokens = rate(limits.outputTokensPerMinute, previous?.outputTokens)
        budgetDay = budget(limits.budgetMicrosPerDay, .day, previous?.budgetDay)
        budgetMonth = budget(limits.budgetMicrosPerMonth, .month, previous?.budgetMonth)
    }
}

/// What one scope reserved for one request.
struct ScopeReservation: Sendable {
    let counters: ScopeCounters
    var requestsCost: Int64 = 0
    var tokensCost: Int64 = 0
    var inputCost: Int64 = 0
    var outputCost: Int64 = 0
    /// Budget windows reserved in; `nil` when that budget was not (yet) reserved.
    var dayWindow: Int64?
    var monthWindow: Int64?
    /// What the scope took from its fleet lease slots (nil without leases).
    var leases: ScopeLeaseTickets?

    init(counters: ScopeCounters) {
        self.counters = counters
    }

    /// Corrects every reservation to the actual amounts (all zero releases).
    func settle(
        requests: Int64, input: Int64, output: Int64, reservedMicros: Int64, actualMicros: Int64, now: QuotaInstant
    ) {
        counters.requests?.settle(reservedCost: requestsCost, actual: requests, nowNanos: now.nanos)
        counters.tokens?.settle(reservedCost: tokensCost, actual: input &+ output, nowNanos: now.nanos)
        counters.inputTokens?.settle(reservedCost: inputCost, actual: input, nowNanos: now.nanos)
        counters.outputTokens?.settle(reservedCost: outputCost, actual: output, nowNanos: now.nanos)
        if let dayWindow {
            counters.budgetDay?.settle(
                window: dayWindow, reserved: reservedMicros, actual: actualMicros, nowMillis: now.millis)
        }
        if let monthWindow {
            counters.budgetMonth?.settle(
                window: monthWindow, reserved: reservedMicros, actual: actualMicros, nowMillis: now.millis)
        }
        leases?.settle(requests: requests, input: input, output: output, costMicros: actualMicros)
    }

    func release(reservedMicros: Int64, now: QuotaInstant) {
        settle(requests: 0, input: 0, output: 0, reservedMicros: reservedMicros, actualMicros: 0, now: now)
    }
}

/// The facts behind a denial, turned into a `QuotaDenial` off the hot path.
struct QuotaDenialCause {
    var scope: QuotaScope
    var dimension: QuotaDimension
    var limit: Int64
    var used: Int64
    var requested: Int64
    /// `nil` when the request can never fit.
    var retryAfterMillis: Int64?
    /// The 429 of a lease denial without a valid lease (`quota_unavailable`); nil for the usual one.
    var leaseError: GatewayError? = nil
}

/// In-process quota accounting: atomics only on the hot path, counters built at config time.
///
/// The scope table is an immutable dictionary built once per config snapshot, so a lookup is a plain
/// read; only the counters' atomics are written. Scopes without configured limits are not limited.
public final class LocalQuotaStore: QuotaStore {
    private let scopes: [QuotaScope: ScopeCounters]
    /// Counters of run-time subjects (JWT `sub`), each limited by `subjectLimits`; nil when unlimited.
    private let subjects: SubjectScopeTable?
    /// The fleet lease slots of every configured scope; nil without a lease book.
    private let leaseSlots: [QuotaScope: ScopeLeaseSlots]?
    private let leaseClock: (@Sendable () -> Int64)?
    /// Gives the slots back to the book when this store (its config) goes away.
    private let leaseRegistration: LeaseRegistration?

    /// Builds the counters for every scope with limits.
    /// - Parameters:
    ///   - limits: the limits of each configured scope (key, team, model); scopes without any get no counters.
    ///   - subjectLimits: the limits of every run-time subject (requests with `keyIsSubject`).
    ///   - subjectCapacity: subjects with counters of their own; beyond it they share one set.
    ///   - registry: counters that outlive configs: a store built on the registry of the config
    ///     it replaces takes its counters over where they still apply, so a reload does not reset
    ///     quotas. Without one the store starts afresh.
    ///   - leases: the process's fleet lease book: every configured scope's limits are also
    ///     admitted against its slots (run-time subjects stay local). nil: local quotas only.
    public init(
        limits: [QuotaScope: QuotaLimits], subjectLimits: QuotaLimits? = nil, subjectCapacity: Int = 4096,
        registry: QuotaCounterRegistry = QuotaCounterRegistry(), leases: QuotaLeaseOptions? = nil
    ) {
        var scopes: [QuotaScope: ScopeCounters] = [:]
        for (scope, scopeLimits) in limits where !scopeLimits.isEmpty {
            scopes[scope] = registry.counters(for: scope, limits: scopeLimits)
        }
        self.scopes = scopes
        if let leases {
            var wanted: [(key: LeaseKey, limit: Int64, policy: LeaseFailurePolicy)] = []
            for (scope, counters) in scopes {
                wanted += ScopeLeaseSlots.wanted(scope, counters.limits, leases.failure[scope] ?? leases.defaultFailure)
            }
            let acquired = leases.book.acquire(wanted)
            var table: [QuotaScope: ScopeLeaseSlots] = [:]
            for scope in scopes.keys { table[scope] = ScopeLeaseSlots(scope: scope, slots: acquired) }
            leaseSlots = table
            leaseClock = leases.monotonicNanos
            leaseRegistration = LeaseRegistration(book: leases.book, keys: Array(acquired.keys))
        } else {
            leaseSlots = nil
            leaseClock = nil
            leaseRegistration = nil
        }
        if let subjectLimits, !subjectLimits.isEmpty {
            subjects = registry.subjects(limits: subjectLimits, capacity: subjectCapacity)
        } else {
            subjects = nil
        }
    }

    /// Run-time subjects that have counters of their own (for tests and admin views).
    public var subjectCount: Int { subjects?.claimedCount ?? 0 }

    /// The limits configured for `scope`, if any.
    public func limits(for scope: QuotaScope) -> QuotaLimits? { scopes[scope]?.limits }

    public func admit(_ request: QuotaRequest, now: Int64) -> QuotaDecision {
        let instant = QuotaInstant(millis: now)
        let estimate = request.estimate
        let (keyCounters, teamCounters, modelCounters) = counters(for: request)
        var ticket = AdmissionTicket(estimate: estimate)
        // Leases: the scopes' slots and the monotonic clock, read once (nothing without a book).
        var keyLeases: ScopeLeaseSlots?
        var teamLeases: ScopeLeaseSlots?
        var modelLeases: ScopeLeaseSlots?
        var leaseNanos: Int64 = 0
        if let leaseSlots, let leaseClock {
            if !request.keyIsSubject { keyLeases = leaseSlots[.key(request.key)] }
            if let team = request.team { teamLeases = leaseSlots[.team(team)] }
            modelLeases = leaseSlots[.model(request.model)]
            leaseNanos = leaseClock()
        }
        if let keyCounters {
            switch Self.reserve(keyCounters, .key(request.key), estimate, instant, keyLeases, leaseNanos) {
            case .success(let reservation): ticket.key = reservation
            case .failure(let cause): return .denied(denial(cause, request, instant))
            }
        }
        if let teamCounters, let team = request.team {
            switch Self.reserve(teamCounters, .team(team), estimate, instant, teamLeases, leaseNanos) {
            case .success(let reservation): ticket.team = reservation
            case .failure(let cause):
                release(ticket, now: instant.millis)
                return .denied(denial(cause, request, instant))
            }
        }
        if let modelCounters {
            switch Self.reserve(modelCounters, .model(request.model), estimate, instant, modelLeases, leaseNanos) {
            case .success(let reservation): ticket.model = reservation
            case .failure(let cause):
                release(ticket, now: instant.millis)
                return .denied(denial(cause, request, instant))
            }
        }
        ticket.headers = Self.headers(keyCounters, teamCounters, modelCounters, instant)
        return .admitted(ticket)
    }

    public func settle(_ ticket: AdmissionTicket, actual: TokenUsage, costMicros: Int64, now: Int64) {
        let instant = QuotaInstant(millis: now)
        let input = Int64(max(0, actual.inputTokens))
        let output = Int64(max(0, actual.outputTokens))
        let reserved = ticket.estimate.costMicros
        ticket.key?.settle(
            requests: 1, input: input, output: output, reservedMicros: reserved, actualMicros: costMicros, now: instant)
        ticket.team?.settle(
            requests: 1, input: input, output: output, reservedMicros: reserved, actualMicros: costMicros, now: instant)
        ticket.model?.settle(
            requests: 1, input: input, output: output, reservedMicros: reserved, actualMicros: costMicros, now: instant)
    }

    public func release(_ ticket: AdmissionTicket, now: Int64) {
        let instant = QuotaInstant(millis: now)
        ticket.key?.release(reservedMicros: ticket.estimate.costMicros, now: instant)
        ticket.team?.release(reservedMicros: ticket.estimate.costMicros, now: instant)
        ticket.model?.release(reservedMicros: ticket.estimate.costMicros, now: instant)
    }

    public func rateLimitHeaders(for request: QuotaRequest, now: Int64) -> RateLimitHeaders {
        rateLimitHeaders(
            key: request.key, keyIsSubject: request.keyIsSubject, team: request.team, model: request.model, now: now)
    }

    public func rateLimitHeaders(
        key: String, keyIsSubject: Bool = false, team: String?, model: String?, now: Int64
    ) -> RateLimitHeaders {
        let (keyCounters, teamCounters, modelCounters) = counters(key: key, keyIsSubject: keyIsSubject, team: team, model: model)
        return Self.headers(keyCounters, teamCounters, modelCounters, QuotaInstant(millis: now))
    }

    /// Micro-dollars spent by `scope` today (UTC) and this month, for metadata and admin views.
    public func spentMicros(_ scope: QuotaScope, now: Int64) -> (day: Int64?, month: Int64?) {
        let counters = lookup(scope)
        let instant = QuotaInstant(millis: now)
        return (
            counters?.budgetDay?.spent(nowMillis: instant.millis),
            counters?.budgetMonth?.spent(nowMillis: instant.millis)
        )
    }

    /// Units in the `dimension` counter of `scope` at `now` (micro-dollars for budgets); nil if unlimited.
    public func used(_ scope: QuotaScope, _ dimension: QuotaDimension, now: Int64) -> Int64? {
        guard let counters = lookup(scope) else { return nil }
        let instant = QuotaInstant(millis: now)
        switch dimension {
        case .requestsPerMinute: return counters.requests?.used(nowNanos: instant.nanos)
        case .tokensPerMinute: return counters.tokens?.used(nowNanos: instant.nanos)
        case .inputTokensPerMinute: return counters.inputTokens?.used(nowNanos: instant.nanos)
        case .outputTokensPerMinute: return counters.outputTokens?.used(nowNanos: instant.nanos)
        case .budgetPerDay: return counters.budgetDay?.spent(nowMillis: instant.millis)
        case .budgetPerMonth: return counters.budgetMonth?.spent(nowMillis: instant.millis)
        }
    }

    // MARK: - Internals

    private func counters(for request: QuotaRequest) -> (ScopeCounters?, ScopeCounters?, ScopeCounters?) {
        counters(key: request.key, keyIsSubject: request.keyIsSubject, team: request.team, model: request.model)
    }

    /// The counters of a key (or run-time subject), team and model; nil where a scope is unlimited.
    private func counters(
        key: String, keyIsSubject: Bool, team: String?, model: String?
    ) -> (ScopeCounters?, ScopeCounters?, ScopeCounters?) {
        (
            keyIsSubject ? subjects?.counters(for: key) : scopes[.key(key)],
            team.flatMap { scopes[.team($0)] },
            model.flatMap { scopes[.model($0)] }
        )
    }

    /// A configured scope, or a run-time subject already seen (key scopes only).
    private func lookup(_ scope: QuotaScope) -> ScopeCounters? {
        if let counters = scopes[scope] { return counters }
        guard scope.kind == .key else { return nil }
        return subjects?.existingCounters(for: scope.name)
    }

    /// Reserves the estimate in every counter of one scope, or rolls back what it took and says why.
    /// `scope` names the scope in a denial (subject counters are shared objects without a name).
    /// With `leases`, the fleet's slots of the scope admit too, after the local counters.
    private static func reserve(
        _ counters: ScopeCounters, _ scope: QuotaScope, _ estimate: QuotaEstimate, _ now: QuotaInstant,
        _ leases: ScopeLeaseSlots?, _ leaseNanos: Int64
    ) -> Result<ScopeReservation, QuotaDenialError> {
        var reservation = ScopeReservation(counters: counters)
        var cause: QuotaDenialCause?
        func rate(_ counter: RateCounter?, _ amount: Int64, _ dimension: QuotaDimension, _ cost: inout Int64) -> Bool {
            guard let counter else { return true }
            switch counter.reserve(amount, nowNanos: now.nanos) {
            case .reserved(let reserved):
                cost = reserved
                return true
            case .denied(let used, let retryAfterNanos):
                cause = QuotaDenialCause(
                    scope: scope, dimension: dimension, limit: counter.limit, used: used, requested: amount,
                    retryAfterMillis: QuotaDuration.millis(ceilingNanos: retryAfterNanos))
            case .tooLarge:
                cause = QuotaDenialCause(
                    scope: scope, dimension: dimension, limit: counter.limit, used: 0, requested: amount,
                    retryAfterMillis: nil)
            }
            return false
        }
        func budget(
            _ counter: BudgetCounter?, _ limit: Int64?, _ dimension: QuotaDimension, _ window: inout Int64?
        ) -> Bool {
            guard let counter, let limit else { return true }
            switch counter.reserve(estimate.costMicros, limitMicros: limit, nowMillis: now.millis) {
            case .reserved(let reserved):
                window = reserved
                return true
            case .denied(let spent, let retryAfterMillis):
                cause = QuotaDenialCause(
                    scope: scope, dimension: dimension, limit: limit, used: spent,
                    requested: estimate.costMicros, retryAfterMillis: retryAfterMillis)
                return false
            }
        }
        let limits = counters.limits
        let admitted =
            rate(counters.requests, 1, .requestsPerMinute, &reservation.requestsCost)
            && rate(counters.tokens, estimate.totalTokens, .tokensPerMinute, &reservation.tokensCost)
            && rate(counters.inputTokens, estimate.inputTokens, .inputTokensPerMinute, &reservation.inputCost)
            && rate(counters.outputTokens, estimate.outputTokens, .outputTokensPerMinute, &reservation.outputCost)
            && budget(counters.budgetDay, limits.budgetMicrosPerDay, .budgetPerDay, &reservation.dayWindow)
            && budget(counters.budgetMonth, limits.budgetMicrosPerMonth, .budgetPerMonth, &reservation.monthWindow)
        if admitted {
            guard let leases else { return .success(reservation) }
            switch leases.admit(estimate, nowMillis: now.millis, nowNanos: leaseNanos) {
            case .success(let tickets):
                reservation.leases = tickets
                return .success(reservation)
            case .failure(let denial):
                reservation.release(reservedMicros: estimate.costMicros, now: now)
                return .failure(denial)
            }
        }
        reservation.release(reservedMicros: estimate.costMicros, now: now)
        guard let cause else { return .success(reservation) }  // unreachable: a refusal always says why
        return .failure(QuotaDenialError(cause: cause))
    }

    private static func headers(
        _ key: ScopeCounters?, _ team: ScopeCounters?, _ model: ScopeCounters?, _ now: QuotaInstant
    ) -> RateLimitHeaders {
        var headers = RateLimitHeaders()
        func include(_ counters: ScopeCounters?) {
            guard let counters else { return }
            if let requests = counters.requests {
                headers.requests = RateLimitHeaders.tighter(headers.requests, requests.status(nowNanos: now.nanos))
            }
            if let tokens = counters.tokens {
                headers.tokens = RateLimitHeaders.tighter(headers.tokens, tokens.status(nowNanos: now.nanos))
            }
            if let tokens = counters.inputTokens {
                headers.tokens = RateLimitHeaders.tighter(headers.tokens, tokens.status(nowNanos: now.nanos))
            }
            if let tokens = counters.outputTokens {
                headers.tokens = RateLimitHeaders.tighter(headers.tokens, tokens.status(nowNanos: now.nanos))
            }
        }
        include(key)
        include(team)
        include(model)
        return headers
    }

    @inline(never)
    private func denial(_ error: QuotaDenialError, _ request: QuotaRequest, _ now: QuotaInstant) -> QuotaDenial {
        let (key, team, model) = counters(for: request)
        var headers = Self.headers(key, team, model, now)
        headers.retryAfterMillis = error.cause.retryAfterMillis
        return QuotaDenial(
            scope: error.cause.scope, dimension: error.cause.dimension,
            error: error.cause.gatewayError(model: request.model),
            retryAfterSeconds: error.cause.retryAfterMillis.map { QuotaDuration.retryAfterSeconds(millis: $0) },
            headers: headers)
    }
}

/// A refusal inside `LocalQuotaStore.reserve` (a `Result` failure needs an `Error`).
struct QuotaDenialError: Error {
    var cause: QuotaDenialCause
}
