// Per-model prices and the cost of a request's usage, exact to the micro-dollar.
//
//     {"gpt-4o-mini": {"input": 0.15, "cached_input": 0.075, "output": 0.6},
//      "claude-sonnet-4": {"input": 3, "cached_input": 0.3, "cache_write": 3.75, "output": 15}}
//
// Prices are USD per million tokens, as providers publish them, and are stored as integer
// micro-dollars per million tokens; a cost is then `Σ tokens × rate / 10⁶` computed in integers
// and rounded once, half up, at the end, so no floating-point drift accumulates in budgets.
//
// Billing rules (how OpenAI, Anthropic and Bedrock price usage):
// - `TokenUsage.inputTokens` includes cached reads and cache writes; each is billed at its own
//   rate and only the rest at the input rate;
// - cache writes default to the input rate and cached reads too, when no rate is configured;
// - reasoning tokens are already inside `outputTokens` and billed as output.

/// The prices of one model, in micro-dollars per million tokens.
public struct ModelPrice: Sendable, Equatable {
    public var inputMicrosPerMillion: Int64
    public var cachedInputMicrosPerMillion: Int64
    public var cacheWriteMicrosPerMillion: Int64
    public var outputMicrosPerMillion: Int64
    /// Micro-dollars per search unit (`TokenUsage.searchUnits`: Cohere bills rerank this way, one
    /// unit per query over up to 100 documents), beside any token prices.
    public var searchUnitMicros: Int64

    public init(
        inputMicrosPerMillion: Int64, cachedInputMicrosPerMillion: Int64? = nil,
        cacheWriteMicrosPerMillion: Int64? = nil, outputMicrosPerMillion: Int64, searchUnitMicros: Int64 = 0
    ) {
        self.inputMicrosPerMillion = Self.clampRate(inputMicrosPerMillion)
        self.cachedInputMicrosPerMillion = Self.clampRate(cachedInputMicrosPerMillion ?? inputMicrosPerMillion)
        self.cacheWriteMicrosPerMillion = Self.clampRate(cacheWriteMicrosPerMillion ?? inputMicrosPerMillion)
        self.outputMicrosPerMillion = Self.clampRate(outputMicrosPerMillion)
        self.searchUnitMicros = min(max(0, searchUnitMicros), Self.maxSearchUnitMicros)
    }

    /// The largest search-unit price accepted: $1,000 per unit.
    public static let maxSearchUnitMicros: Int64 = 1_000_000_000

    /// The largest price accepted: $1,000,000 per million tokens.
    public static let maxMicrosPerMillion: Int64 = 1_000_000_000_000
    /// Token counts from provider responses are capped here (about 10¹²) before pricing.
    static let maxTokens: Int64 = 1 << 40

    private static func clampRate(_ rate: Int64) -> Int64 { min(max(0, rate), maxMicrosPerMillion) }

    /// The cost of `usage` in micro-dollars, rounded half up.
    public func cost(_ usage: TokenUsage) -> Int64 {
        func tokens(_ count: Int) -> Int64 { min(max(0, Int64(count)), Self.maxTokens) }
        let cached = tokens(usage.cachedInputTokens)
        let cacheWrite = tokens(usage.cacheWriteInputTokens)
        let uncached = max(0, tokens(usage.inputTokens) - cached - cacheWrite)
        // Each term is < 2^40 × 10^12 < 2^80: its quotient by 10^6 fits 64 bits and the four
        // quotients together stay below 2^63.
        var whole: UInt64 = 0
        var fraction: UInt64 = 0
        func add(_ count: Int64, _ rate: Int64) {
            let product = UInt64(count).multipliedFullWidth(by: UInt64(rate))
            let (quotient, remainder) = UInt64(1_000_000).dividingFullWidth(product)
            whole &+= quotient
            fraction &+= remainder
        }
        add(uncached, inputMicrosPerMillion)
        add(cached, cachedInputMicrosPerMillion)
        add(cacheWrite, cacheWriteMicrosPerMillion)
        add(tokens(usage.outputTokens), outputMicrosPerMillion)
        whole &+= (fraction + 500_000) / 1_000_000
        // At most 10^8 units (TokenUsage.maxCount) × 10^9 micro-dollars: below 2^57.
        whole &+= UInt64(TokenUsage.count(usage.searchUnits)) &* UInt64(searchUnitMicros)
        return whole > UInt64(Int64.max) ? Int64.max : Int64(whole)
    }
}

/// Prices by model name, read from the `prices` config object.
public struct PriceTable: Sendable, Equatable {
    public let prices: [String: ModelPrice]

    public init(_ prices: [String: ModelPrice] = [:]) {
        self.prices = prices
    }

    /// The price of `model`, if configured.
    public func price(for model: String) -> ModelPrice? { prices[model] }

    /// The cost of `usage` on `model` in micro-dollars; `nil` when the model has no price, so the
    /// caller decides what an unpriced model means for budgets instead of silently charging zero.
    public func cost(usage: TokenUsage, model: String) -> Int64? { prices[model]?.cost(usage) }

    /// Reads `{"<model>": {"input", "cached_input", "cache_write", "output"}, ...}`: every key of
    /// `object` is a model name (the caller's `finish()` then has nothing left to reject).
    public static func read(_ object: inout ConfigObject) throws(ConfigError) -> PriceTable {
        var prices: [String: ModelPrice] = [:]
        for model in object.remainingKeys {
            guard var entry = try object.optionalObject(model) else {
                throw ConfigError(path: object.childPath(model), problem: "expected an object, got null")
            }
            guard !model.isEmpty else { throw ConfigError(path: entry.path, problem: "model name must not be empty") }
            prices[model] = try readPrice(&entry)
            try entry.finish()
        }
        return PriceTable(prices)
    }

    /// Reads one model's prices (USD per million tokens, and `search_unit` in USD per search unit);
    /// `input` and `output` are required.
    public static func readPrice(_ object: inout ConfigObject) throws(ConfigError) -> ModelPrice {
        func rate(_ key: String) throws(ConfigError) -> Int64? {
            try object.optionalDouble(key, in: 0...1_000_000).map(micros(fromDollars:))
        }
        guard let input = try rate("input") else {
            throw ConfigError(path: object.childPath("input"), problem: "is required")
        }
        guard let output = try rate("output") else {
            throw ConfigError(path: object.childPath("output"), problem: "is required")
        }
        let searchUnit = try object.optionalDouble("search_unit", in: 0...1_000).map(micros(fromDollars:))
        return ModelPrice(
            inputMicrosPerMillion: input, cachedInputMicrosPerMillion: try rate("cached_input"),
            cacheWriteMicrosPerMillion: try rate("cache_write"), outputMicrosPerMillion: output,
            searchUnitMicros: searchUnit ?? 0)
    }

    /// Dollars to micro-dollars, rounded to the nearest (`0.075` → 75000); callers bound `dollars` first.
    public static func micros(fromDollars dollars: Double) -> Int64 {
        let scaled = (dollars * 1_000_000).rounded()
        guard scaled.isFinite, scaled > -9.0e18, scaled < 9.0e18 else { return scaled > 0 ? Int64.max : 0 }
        return Int64(scaled)
    }
}
