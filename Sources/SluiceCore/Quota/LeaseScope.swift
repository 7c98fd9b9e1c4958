// What a fleet lease is a slice of: one limited quantity (requests, tokens, micro-dollars) of one
// quota scope (key, team, model) over one fixed UTC window (minute, day, month). Shared by the
// module (LeaseBook) and sluiced (LeaseLedger) so both sides name scopes and count windows alike.
//
// Windows: the dollar budgets are the module's own calendar windows (`BudgetPeriod`: UTC day,
// calendar month). The per-minute rates run locally on a GCRA bucket (`RateCounter`), which has no
// window id to agree on across processes, so the fleet divides them by fixed UTC minutes instead:
// minute `m` is `[m × 60 s, (m+1) × 60 s)`. See FleetLeases.md for what that changes at a minute's edge.

/// A quantity a fleet lease counts, with the window it resets on. Raw values are the wire names.
public enum LeaseDimension: String, Sendable, Hashable, CaseIterable {
    case requestsPerMinute = "requests_per_minute"
    case tokensPerMinute = "tokens_per_minute"
    case inputTokensPerMinute = "input_tokens_per_minute"
    case outputTokensPerMinute = "output_tokens_per_minute"
    /// Micro-dollars per UTC day.
    case costPerDay = "cost_micro_usd_per_day"
    /// Micro-dollars per calendar month (UTC).
    case costPerMonth = "cost_micro_usd_per_month"

    public init(_ dimension: QuotaDimension) {
        switch dimension {
        case .requestsPerMinute: self = .requestsPerMinute
        case .tokensPerMinute: self = .tokensPerMinute
        case .inputTokensPerMinute: self = .inputTokensPerMinute
        case .outputTokensPerMinute: self = .outputTokensPerMinute
        case .budgetPerDay: self = .costPerDay
        case .budgetPerMonth: self = .costPerMonth
        }
    }

    public var period: LeasePeriod {
        switch self {
        case .requestsPerMinute, .tokensPerMinute, .inputTokensPerMinute, .outputTokensPerMinute: .minute
        case .costPerDay: .day
        case .costPerMonth: .month
        }
    }

    /// The largest limit a scope may have in this dimension (the module's config bounds).
    public var maxLimit: Int64 {
        switch self {
        case .requestsPerMinute: QuotaLimits.maxRequestsPerMinute
        case .tokensPerMinute, .inputTokensPerMinute, .outputTokensPerMinute: QuotaLimits.maxTokensPerMinute
        case .costPerDay, .costPerMonth: PriceTable.micros(fromDollars: QuotaLimits.maxBudgetUSD)
        }
    }

    /// The limit `limits` sets in this dimension, if any.
    public func limit(in limits: QuotaLimits) -> Int64? {
        switch self {
        case .requestsPerMinute: limits.requestsPerMinute
        case .tokensPerMinute: limits.tokensPerMinute
        case .inputTokensPerMinute: limits.inputTokensPerMinute
        case .outputTokensPerMinute: limits.outputTokensPerMinute
        case .costPerDay: limits.budgetMicrosPerDay
        case .costPerMonth: limits.budgetMicrosPerMonth
        }
    }
}

/// The fixed UTC window a lease dimension resets on.
public enum LeasePeriod: Sendable, Hashable {
    case minute
    case day
    case month

    public static let millisPerMinute: Int64 = 60_000

    /// The window id holding `millis` (minutes, days or months since 1970) and its end.
    /// `millis` is clamped to `0...UTCCalendar.maxMillis`.
    public func window(atMillis millis: Int64) -> (id: Int64, endMillis: Int64) {
        let millis = min(max(0, millis), UTCCalendar.maxMillis)
        switch self {
        case .minute:
            let minute = millis / Self.millisPerMinute
            return (minute, (minute + 1) * Self.millisPerMinute)
        case .day: return BudgetPeriod.day.window(atMillis: millis)
        case .month: return BudgetPeriod.month.window(atMillis: millis)
        }
    }

    /// The first instant of the window holding `millis`.
    public func startMillis(atMillis millis: Int64) -> Int64 {
        let millis = min(max(0, millis), UTCCalendar.maxMillis)
        switch self {
        case .minute: return millis / Self.millisPerMinute * Self.millisPerMinute
        case .day: return UTCCalendar.day(ofMillis: millis) * UTCCalendar.millisPerDay
        case .month:
            let date = UTCCalendar.civil(ofMillis: millis)
            return UTCCalendar.days(fromCivil: CivilDate(year: date.year, month: date.month, day: 1)) * UTCCalendar.millisPerDay
        }
    }

    /// The largest window id that can occur (for range checks of ids read from the wire).
    public var maxWindow: Int64 { window(atMillis: UTCCalendar.maxMillis).id }
}

/// One leased quantity of one scope: the unit sluiced keeps a ledger for.
public struct LeaseKey: Sendable, Hashable, CustomStringConvertible {
    public var scope: QuotaScope
    public var dimension: LeaseDimension

    public init(_ scope: QuotaScope, _ dimension: LeaseDimension) {
        self.scope = scope
        self.dimension = dimension
    }

    public var description: String { "\(scope) \(dimension.rawValue)" }
}

/// What the module does for a scope when it holds no valid lease (sluiced unreachable past the
/// lease's expiry, or never reached) and the request would need one.
public enum LeaseFailurePolicy: Sendable, Hashable {
    /// Admit on this Envoy alone, up to `localCap` units per window, counted in
    /// `sluice.lease.fail_open_admitted`; beyond the cap, refuse.
    case failOpen(localCap: Int64)
    /// Refuse (429 `quota_unavailable`), counted in `sluice.lease.fail_closed_denied`.
    case failClosed
}

/// One line of a lease request: for one quantity and window, what this Envoy spent since its
/// last report, what it gives back from its slice, and how much more it wants.
public struct LeaseItem: Sendable, Equatable {
    public var key: LeaseKey
    /// The window the spend and return belong to (the Envoy's clock); grants are for sluiced's current one.
    public var window: Int64
    /// The scope's limit in this dimension as the Envoy's config states it.
    public var limit: Int64
    public var spent: Int64
    public var returned: Int64
    public var want: Int64
    /// What the Envoy still holds of its slice in the window by its own count (the free part, after
    /// this item's return; 0 when its lease has lapsed). sluiced reads it only for a holder whose
    /// slice it does not know while a restart's stand-in still holds the fleet's old slices: the
    /// holder takes its part back from the stand-in instead of it being counted twice.
    public var held: Int64

    public init(
        key: LeaseKey, window: Int64, limit: Int64, spent: Int64 = 0, returned: Int64 = 0, want: Int64 = 0, held: Int64 = 0
    ) {
        self.key = key
        self.window = window
        self.limit = limit
        self.spent = spent
        self.returned = returned
        self.want = want
        self.held = held
    }
}

/// The answer to one item.
public struct LeaseGrant: Sendable, Equatable {
    public var key: LeaseKey
    public var window: Int64
    /// Added to the holder's slice now (0 when nothing is left, or the window is not current).
    public var granted: Int64
    /// The holder's whole slice as the ledger counts it after this request (granted included,
    /// spent and returned taken off).
    public var held: Int64
    /// How long the slice stays the holder's from when sluiced read the request (unless renewed).
    /// The holder times it from when it SENT the request, which is earlier, so latency only
    /// shortens its own use of the slice.
    public var ttlMillis: Int64
    /// sluiced's clock at expiry (information: the holder times its slice from `ttlMillis`).
    public var expiresAtMillis: Int64
    public var limit: Int64
    /// What the fleet reported spent in the window.
    public var consumed: Int64
    /// Σ of every holder's slice in the window, this one's included.
    public var outstanding: Int64
    /// limit − consumed − outstanding, at least 0: what sluiced can still grant.
    public var remaining: Int64
    /// When the window ends (sluiced's clock).
    public var windowEndMillis: Int64

    public init(
        key: LeaseKey, window: Int64, granted: Int64, held: Int64, ttlMillis: Int64, expiresAtMillis: Int64,
        limit: Int64, consumed: Int64, outstanding: Int64, remaining: Int64, windowEndMillis: Int64
    ) {
        self.key = key
        self.window = window
        self.granted = granted
        self.held = held
        self.ttlMillis = ttlMillis
        self.expiresAtMillis = expiresAtMillis
        self.limit = limit
        self.consumed = consumed
        self.outstanding = outstanding
        self.remaining = remaining
        self.windowEndMillis = windowEndMillis
    }
}
