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
// any, and read as `%DYNAMIC_METADATA(sluice:cost_usd)%`. Each key costs Envoy a Struct edit
// per request whether anything reads it or not, so the filter config may name the keys to write
// (`metadata_keys`): sluiced names exactly the ones its access log prints, none when no listener
// logs. Without the setting every key is written, for hand-written Envoy configs.

/// A key of the `sluice` dynamic-metadata namespace.
public enum FilterMetadataKey: UInt8, Sendable, CaseIterable {
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

extension FilterMetadataKey {
    /// The key named `name` in the namespace, if there is one.
    public init?(name: String) {
        guard let key = Self.allCases.first(where: { $0.name.description == name }) else { return nil }
        self = key
    }
}

/// A set of metadata keys: those the filter writes (`metadata_keys`).
public struct FilterMetadataKeys: OptionSet, Sendable, Hashable {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// The set of `key` alone (a bit each: thirteen keys, numbered from 0).
    public init(_ key: FilterMetadataKey) { self.init(rawValue: 1 << UInt16(key.rawValue)) }

    public static let all = FilterMetadataKeys(FilterMetadataKey.allCases.map(FilterMetadataKeys.init))

    public func contains(_ key: FilterMetadataKey) -> Bool { contains(FilterMetadataKeys(key)) }

    /// The keys of the token counts (`TokenUsage.forEachMetadataNumber(in:)`).
    public static let tokenCounts = FilterMetadataKeys(rawValue: [
        FilterMetadataKey.inputTokens, .outputTokens, .cachedInputTokens, .totalTokens, .searchUnits,
    ].reduce(0) { $0 | FilterMetadataKeys($1).rawValue })

    /// The keys in the set, in `allCases` order.
    public var keys: [FilterMetadataKey] { FilterMetadataKey.allCases.filter { contains($0) } }
}

extension TokenUsage {
    /// Calls `body` with each token count access logs read, as a metadata number, for the keys in
    /// `keys`: bounded, so the numbers are exact; `search_units` only when a rerank backend billed
    /// any, so a chat request pays no call for it.
    public func forEachMetadataNumber(in keys: FilterMetadataKeys, _ body: (FilterMetadataKey, Double) -> Void) {
        let usage = bounded
        if keys.contains(.inputTokens) { body(.inputTokens, Double(usage.inputTokens)) }
        if keys.contains(.outputTokens) { body(.outputTokens, Double(usage.outputTokens)) }
        if keys.contains(.cachedInputTokens) { body(.cachedInputTokens, Double(usage.cachedInputTokens)) }
        if keys.contains(.totalTokens) { body(.totalTokens, Double(usage.totalTokens)) }
        if usage.searchUnits > 0, keys.contains(.searchUnits) { body(.searchUnits, Double(usage.searchUnits)) }
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
