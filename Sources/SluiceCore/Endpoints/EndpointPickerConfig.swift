// The endpoint picker's config: the `lb_policy_config` of a cluster whose
// `load_balancing_policy` is the module's `sluice_endpoint_picker`, as JSON:
//
// {"pool": "llama-pool", "stale_after_ms": 2000, "saturation_queue": 5, "saturation_kv_cache": 0.8,
//  "prefix_weight": 3, "queue_weight": 2, "kv_cache_weight": 1, "lora_weight": 2,
//  "session_weight": 4, "prefix_blocks_per_endpoint": 16384}
//
// Only `pool` is required: the name under which the background worker publishes this pool's
// metric snapshots. Parsed strictly (unknown field, wrong type or out of range: refused with the
// field named), so a cluster never runs a picker that silently ignores a typo.

public struct EndpointPickerConfig: Sendable, Equatable {
    public var pool: String
    public var scoring = EndpointScoringConfig()
    /// Entries per endpoint of each worker's prefix index (see `PrefixIndex`).
    public var prefixBlocksPerEndpoint = 16_384

    public init(pool: String) { self.pool = pool }

    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> EndpointPickerConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 4, maxBytes: 16 * 1024))
        } catch {
            throw ConfigError(path: "", problem: "lb_policy_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        let pool = try root.nonEmptyString("pool")
        guard pool.utf8.count <= 128, pool.utf8.allSatisfy(FleetUsageRecord.isPrintableASCII) else {
            throw ConfigError(path: "pool", problem: "must be 1 to 128 printable ASCII characters")
        }
        var config = EndpointPickerConfig(pool: pool)
        var scoring = EndpointScoringConfig()
        if let value = try root.optionalInt("stale_after_ms", in: 100...600_000) { scoring.staleAfterMillis = value }
        if let value = try root.optionalInt("saturation_queue", in: 1...Int64(ModelServerMetrics.maxCount)) {
            scoring.saturationQueue = Int(value)
        }
        if let value = try root.optionalDouble("saturation_kv_cache", in: 0.01...1) { scoring.saturationKVCache = value }
        let weights = EndpointScoringConfig.weightRange
        if let value = try root.optionalDouble("prefix_weight", in: weights) { scoring.prefixWeight = value }
        if let value = try root.optionalDouble("queue_weight", in: weights) { scoring.queueWeight = value }
        if let value = try root.optionalDouble("kv_cache_weight", in: weights) { scoring.kvCacheWeight = value }
        if let value = try root.optionalDouble("lora_weight", in: weights) { scoring.loraWeight = value }
        if let value = try root.optionalDouble("session_weight", in: weights) { scoring.sessionWeight = value }
        let blocks = PrefixIndex.blocksPerEndpointRange
        if let value = try root.optionalInt("prefix_blocks_per_endpoint", in: Int64(blocks.lowerBound)...Int64(blocks.upperBound)) {
            config.prefixBlocksPerEndpoint = Int(value)
        }
        try root.finish()
        do {
            config.scoring = try scoring.validated()
        } catch {
            throw ConfigError(path: error.field, problem: error.message)
        }
        return config
    }
}
