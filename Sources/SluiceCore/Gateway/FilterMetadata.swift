// The contract between the two filters: what the downstream `sluice` filter leaves in Envoy's
// dynamic metadata for the upstream `sluice_upstream` filter, and what the upstream filter leaves
// back (the attempt's backend and token usage). Access logs read the same keys
// (`%DYNAMIC_METADATA(sluice:cost_usd)%`).
//
// Dynamic metadata is shared with every other filter of the stream, so what is read back is
// untrusted: another filter (a Lua script, a misconfigured ext_proc) may have written any value
// under these keys. Reading goes through `FilterMetadata`, which clamps numbers into range.

/// A key of the `sluice` dynamic-metadata namespace.
public enum FilterMetadataKey: Sendable, CaseIterable {
    // Written by the downstream filter.
    case consumer, team, endpoint, model, route, stream, includeUsage, costUSD, requestBodyBytes
    // Written by the upstream filter, per attempt.
    case backend, provider, responseModel, inputTokens, outputTokens, cachedInputTokens, totalTokens

    /// The key's name in the namespace (static, so setting it copies nothing).
    public var name: StaticString {
        switch self {
        case .consumer: "consumer"
        case .team: "team"
        case .endpoint: "endpoint"
        case .model: "model"
        case .route: "route"
        case .stream: "stream"
        case .includeUsage: "include_usage"
        case .costUSD: "cost_usd"
        case .requestBodyBytes: "request_body_bytes"
        case .backend: "backend"
        case .provider: "provider"
        case .responseModel: "response_model"
        case .inputTokens: "input_tokens"
        case .outputTokens: "output_tokens"
        case .cachedInputTokens: "cached_input_tokens"
        case .totalTokens: "total_tokens"
        }
    }
}

/// Encoding and decoding of the values under `FilterMetadataKey`s.
public enum FilterMetadata {
    /// The namespace of every key (also the host-metadata namespace naming a host's backend).
    public static let namespace: StaticString = "sluice"

    /// The client's request body length, read back from a metadata number: nil unless it is a
    /// whole number in `0...maxBodyBytes` (a value another filter wrote may be anything).
    public static func bodyBytes(_ number: Double?) -> Int? {
        guard let number, number >= 0, number <= Double(maxBodyBytes), number == number.rounded(.towardZero) else {
            return nil
        }
        return Int(number)
    }

    /// The largest body length carried in metadata (the gateway's own body limit is 1 GiB at most).
    public static let maxBodyBytes = 1 << 40

    /// The usage read back from metadata numbers, each clamped into `0...TokenUsage.maxCount`
    /// (NaN, negative and huge values included); absent numbers are 0.
    public static func usage(inputTokens: Double?, outputTokens: Double?, cachedInputTokens: Double?) -> TokenUsage {
        TokenUsage(
            inputTokens: TokenUsage.count(inputTokens ?? 0), outputTokens: TokenUsage.count(outputTokens ?? 0),
            cachedInputTokens: TokenUsage.count(cachedInputTokens ?? 0))
    }
}
