// The limits one scope (a key, a team, a model) may have, read from its config object.
//
//     {"requests_per_minute": 600, "tokens_per_minute": 100000, "input_tokens_per_minute": 80000,
//      "output_tokens_per_minute": 20000, "budget_usd_per_day": 10.0, "budget_usd_per_month": 200.0}
//
// Every field is optional; an absent field means "no limit on that dimension".

/// Per-minute rate limits and dollar budgets of one quota scope.
public struct QuotaLimits: Sendable, Hashable {
    /// Requests per minute (RPM).
    public var requestsPerMinute: Int64?
    /// Input plus output tokens per minute (TPM).
    public var tokensPerMinute: Int64?
    /// Input (prompt) tokens per minute, cached ones included.
    public var inputTokensPerMinute: Int64?
    /// Output (completion) tokens per minute, reasoning included.
    public var outputTokensPerMinute: Int64?
    /// Spend per UTC day, in micro-dollars.
    public var budgetMicrosPerDay: Int64?
    /// Spend per calendar month (UTC), in micro-dollars.
    public var budgetMicrosPerMonth: Int64?

    public init(
        requestsPerMinute: Int64? = nil, tokensPerMinute: Int64? = nil, inputTokensPerMinute: Int64? = nil,
        outputTokensPerMinute: Int64? = nil, budgetMicrosPerDay: Int64? = nil, budgetMicrosPerMonth: Int64? = nil
    ) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.inputTokensPerMinute = inputTokensPerMinute
        self.outputTokensPerMinute = outputTokensPerMinute
        self.budgetMicrosPerDay = budgetMicrosPerDay
        self.budgetMicrosPerMonth = budgetMicrosPerMonth
    }

    /// True when no dimension is limited.
    public var isEmpty: Bool { self == QuotaLimits() }

    /// Largest requests-per-minute limit accepted (a request then costs 600 µs of the minute).
    public static let maxRequestsPerMinute: Int64 = 100_000_000
    /// Largest tokens-per-minute limit accepted (a token then costs 6 ns of the minute).
    public static let maxTokensPerMinute: Int64 = 10_000_000_000
    /// Largest budget accepted, in dollars; the counters hold up to about 17.5 million.
    public static let maxBudgetUSD: Double = 1_000_000

    /// Reads the limit fields of `object`; the caller calls `finish()` (which rejects unknown fields).
    public static func read(_ object: inout ConfigObject) throws(ConfigError) -> QuotaLimits {
        let tokens: ClosedRange<Int64> = 1...maxTokensPerMinute
        return QuotaLimits(
            requestsPerMinute: try object.optionalInt("requests_per_minute", in: 1...maxRequestsPerMinute),
            tokensPerMinute: try object.optionalInt("tokens_per_minute", in: tokens),
            inputTokensPerMinute: try object.optionalInt("input_tokens_per_minute", in: tokens),
            outputTokensPerMinute: try object.optionalInt("output_tokens_per_minute", in: tokens),
            budgetMicrosPerDay: try readBudget(&object, "budget_usd_per_day"),
            budgetMicrosPerMonth: try readBudget(&object, "budget_usd_per_month"))
    }

    private static func readBudget(_ object: inout ConfigObject, _ key: String) throws(ConfigError) -> Int64? {
        guard let dollars = try object.optionalDouble(key, in: 0...maxBudgetUSD) else { return nil }
        return PriceTable.micros(fromDollars: dollars)
    }
}
