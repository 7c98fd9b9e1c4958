// What the two filters tell each other and the access logs about one request.
//
// Between the filters: the downstream `sluice` filter gives every upstream attempt an
// `AttemptContext` (what was routed), and each attempt gives back an `AttemptReport` (who
// answered, with what usage). They travel in one object both filters hold (`FilterLink` in the
// Envoy layer, stored in the request's filter state), not in dynamic metadata: a metadata write
// crosses into Envoy and edits a protobuf Struct (≈ 0.3 µs a key in perf profiles), a read
// copies the value out, and both ends had to encode and decode it, about 2 µs a request in all.
// The object also cannot be forged: dynamic metadata is shared with every other filter of the
// stream (a Lua script, a misconfigured ext_proc may write any key), a module object is not.
//
// For access logs: the user-facing keys of the `sluice` namespace (consumer, model, route, cost,
// backend, tokens …), written by the downstream filter in one string batch per hook that has
// any, and read as `%DYNAMIC_METADATA(sluice:cost_usd)%`.

/// A key of the `sluice` dynamic-metadata namespace.
public enum FilterMetadataKey: Sendable, CaseIterable {
    // Consumer and team once authorised; model and route once routed.
    case consumer, team, model, route
    // When the stream completes (before access logging): the cost, who answered (the last
    // attempt's backend, its schema and the model it was asked for) and the token counts;
    // the search units a rerank backend billed only when there are any.
    case costUSD, backend, provider, responseModel
    case inputTokens, outputTokens, cachedInputTokens, totalTokens, searchUnits

    /// The key's name in the namespace (static, so setting it copies nothing).
    public var name: StaticString {
        switch self {
        case .consumer: "consumer"
        case .team: "team"
        case .model: "model"
        case .route: "route"
        case .costUSD: "cost_usd"
        case .inputTokens: "input_tokens"
        case .outputTokens: "output_tokens"
        case .cachedInputTokens: "cached_input_tokens"
        case .totalTokens: "total_tokens"
        case .searchUnits: "search_units"
        case .backend: "backend"
        case .provider: "provider"
        case .responseModel: "response_model"
        }
    }
}

/// The `sluice` metadata namespace.
public enum FilterMetadata {
    /// The namespace of every key (also the host-metadata namespace naming a host's backend).
    public static let namespace: StaticString = "sluice"
}

/// What the downstream filter tells every upstream attempt about the routed request.
public struct AttemptContext: Sendable, Equatable {
    public var endpoint: Endpoint
    /// The model the client asked for (before any backend's rename).
    public var model: String
    public var stream: Bool
    /// OpenAI `stream_options.include_usage`.
    public var includeUsage: Bool
    /// The client's body length: an attempt that forwards the body unchanged sends this length,
    /// not the one an earlier attempt's rewrite left in the shared request headers.
    public var requestBodyBytes: Int

    public init(endpoint: Endpoint, model: String, stream: Bool, includeUsage: Bool, requestBodyBytes: Int) {
        self.endpoint = endpoint
        self.model = model
        self.stream = stream
        self.includeUsage = includeUsage
        self.requestBodyBytes = requestBodyBytes
    }
}

/// What an upstream attempt reports back: who answered and the usage its backend reported (every
/// count already within `0...TokenUsage.maxCount`: the usage readers clamp).
public struct AttemptReport: Sendable, Equatable {
    public var usage: TokenUsage
    /// The backend's name in the config.
    public var backend: String
    /// The backend schema that answered (`gen_ai.provider.name`).
    public var provider: String
    /// The model name the backend was asked for (`gen_ai.response.model`).
    public var responseModel: String
    /// What `usage` counts: tokens, or an images or audio model's billing unit.
    public var unit: UsageUnit

    public init(usage: TokenUsage, backend: String, provider: String, responseModel: String, unit: UsageUnit = .tokens) {
        self.usage = usage
        self.backend = backend
        self.provider = provider
        self.responseModel = responseModel
        self.unit = unit
    }
}
