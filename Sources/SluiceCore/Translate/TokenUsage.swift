// Token counts as providers report them, and the one place where such a count enters from outside.
//
// Usage comes from upstreams the gateway does not control (a self-hosted server with a bug, a
// hostile proxy): `"prompt_tokens": 9223372036854775807`, `1e300`, `-5` or `"12"` all occur. Every
// reader goes through `TokenUsage.count`, which turns whatever the provider sent into a count in
// `0...maxCount`, so every later sum, product, conversion and metric stays in range.

/// Token counts extracted from a response or stream, in OpenAI's terms.
///
/// Every count is in `0...TokenUsage.maxCount` when it comes from a reader of this module.
public struct TokenUsage: Sendable, Equatable {
    /// All prompt tokens, cached ones included (OpenAI `prompt_tokens`).
    public var inputTokens: Int = 0
    public var outputTokens: Int = 0
    /// Prompt tokens served from the provider's cache (`prompt_tokens_details.cached_tokens`).
    public var cachedInputTokens: Int = 0
    /// Prompt tokens written to the provider's cache (Anthropic cache creation, Bedrock cache write).
    public var cacheWriteInputTokens: Int = 0
    /// Reasoning tokens included in `outputTokens`, when the provider reports them.
    public var reasoningTokens: Int = 0
    /// Search units a rerank provider billed (Cohere `meta.billed_units.search_units`: one query
    /// over up to 100 documents), priced by a model's `search_unit` rate; not tokens.
    public var searchUnits: Int = 0

    public init(
        inputTokens: Int = 0, outputTokens: Int = 0, cachedInputTokens: Int = 0, cacheWriteInputTokens: Int = 0,
        reasoningTokens: Int = 0, searchUnits: Int = 0, isClamped: Bool = false
    ) {
        self.inputTokens = inputTokens
        self.outputTokens = outputTokens
        self.cachedInputTokens = cachedInputTokens
        self.cacheWriteInputTokens = cacheWriteInputTokens
        self.reasoningTokens = reasoningTokens
        self.searchUnits = searchUnits
        self.isClamped = isClamped
    }

    /// Input plus output tokens, saturating at `maxCount`.
    public var totalTokens: Int { Self.sum(inputTokens, outputTokens) }

    // MARK: - Counts from outside

    /// The most tokens one count of one request may report: ten times the largest context window
    /// of any model today (10M tokens). A provider that reports more is wrong, and its count is
    /// clamped here rather than charged, metered or summed.
    public static let maxCount = 100_000_000

    /// True when the provider reported some count that is not a count in `0...maxCount`
    /// (negative, fractional, beyond the bound, or not a number at all), which its reader
    /// clamped or zeroed. The upstream filter counts these in `upstream_usage_clamped`.
    public var isClamped = false

    /// Every count brought into `0...maxCount` (for usage built by hand or read from metadata).
    public var bounded: TokenUsage {
        TokenUsage(
            inputTokens: Self.count(inputTokens), outputTokens: Self.count(outputTokens),
            cachedInputTokens: Self.count(cachedInputTokens), cacheWriteInputTokens: Self.count(cacheWriteInputTokens),
            reasoningTokens: Self.count(reasoningTokens), searchUnits: Self.count(searchUnits), isClamped: isClamped)
    }

    /// An integer count: negative is 0, beyond `maxCount` is `maxCount`.
    @inlinable
    public static func count(_ value: Int) -> Int { min(max(0, value), maxCount) }

    /// An integer count: negative is 0, beyond `maxCount` is `maxCount`.
    @inlinable
    public static func count(_ value: Int64) -> Int { Int(min(max(0, value), Int64(maxCount))) }

    /// A count carried as a floating-point number (JSON numbers such as `12.0` or `1e300`, Envoy's
    /// metadata numbers): NaN and negatives are 0, fractions round down, beyond `maxCount` (and
    /// infinity) is `maxCount`. Never converts a `Double` that does not fit.
    @inlinable
    public static func count(_ value: Double) -> Int {
        guard value > 0 else { return 0 }  // also NaN
        guard value < Double(maxCount) else { return maxCount }
        return Int(value)
    }

    /// A count from a JSON value: an integer or any other number as above; anything else (absent,
    /// null, string, bool, object) is 0.
    public static func count(_ value: JSONValue?) -> Int {
        guard let number = value?.numberValue else { return 0 }
        if let integer = number.int64 { return count(integer) }
        if let double = number.double { return count(double) }
        // Beyond Double's range: its sign decides.
        return number.text.utf8.first == UInt8(ascii: "-") ? 0 : maxCount
    }

    /// A count from the raw JSON value at `range` of `bytes` (the scanner's view), as `count(_: JSONValue?)`.
    public static func count(at range: Range<Int>, in bytes: Span<UInt8>) -> Int {
        guard JSONScanner.kind(at: range, in: bytes) == .number else { return 0 }
        if let integer = JSONScanner.int64Value(at: range, in: bytes) { return count(integer) }
        if let double = JSONScanner.doubleValue(at: range, in: bytes) { return count(double) }
        // Beyond Double's range (or malformed, where the caller did not validate): its sign decides.
        return bytes[range.lowerBound] == UInt8(ascii: "-") ? 0 : maxCount
    }

    /// `a + b` for counts, saturating at `maxCount`.
    @inlinable
    public static func sum(_ a: Int, _ b: Int) -> Int {
        let (total, overflow) = count(a).addingReportingOverflow(count(b))
        return overflow ? maxCount : min(total, maxCount)
    }
}

/// Reads the counts of one usage report, remembering whether any of them was not a valid count
/// (the report's `TokenUsage.isClamped`). Absent and `null` counts are valid zeros.
public struct TokenCountReader: Sendable {
    /// Whether some count read so far was out of range, fractional or not a number.
    public private(set) var clamped = false

    public init() {}

    /// `TokenUsage.count(value)`, noting a value that is not a count in `0...maxCount`.
    public mutating func count(_ value: JSONValue?) -> Int {
        guard let value, !value.isNull else { return 0 }
        let count = TokenUsage.count(value)
        if !isExact(count, integer: value.int64Value, double: value.doubleValue) { clamped = true }
        return count
    }

    /// `TokenUsage.count(at:in:)`, noting a value that is not a count in `0...maxCount`.
    public mutating func count(at range: Range<Int>, in bytes: Span<UInt8>) -> Int {
        guard let kind = JSONScanner.kind(at: range, in: bytes), kind != .null else { return 0 }
        let count = TokenUsage.count(at: range, in: bytes)
        // The double is read only for a number that is not an integer: building its text and
        // parsing it cost a fifth of reading an OpenAI answer's usage (profile of 2026-12-05).
        let exact = isExact(
            count, integer: JSONScanner.int64Value(at: range, in: bytes), double: JSONScanner.doubleValue(at: range, in: bytes))
        if !exact { clamped = true }
        return count
    }

    /// `count(at:in:)` of a value an upstream scan found; an absent value is 0.
    mutating func count(_ value: UpstreamJSON.Value?, in bytes: Span<UInt8>) -> Int {
        guard let value else { return 0 }
        return count(at: value.range, in: bytes)
    }

    /// `TokenUsage.sum(a, b)`, noting a sum beyond `maxCount`.
    public mutating func sum(_ a: Int, _ b: Int) -> Int {
        let total = TokenUsage.sum(a, b)
        if total == TokenUsage.maxCount, a &+ b != total { clamped = true }
        return total
    }

    /// Whether `count` is exactly the number written: an integer or a whole double in range.
    private func isExact(_ count: Int, integer: Int64?, double: @autoclosure () -> Double?) -> Bool {
        if let integer { return integer == Int64(count) }
        if let double = double() { return double == Double(count) }
        return false  // not a number, or beyond Double's range
    }
}
