// The endpoint picker's config: the `lb_policy_config` of a cluster whose
// `load_balancing_policy` is the module's `sluice_endpoint_picker`, as JSON:
//
// {"pool": "llama-pool", "stale_after_ms": 2000, "saturation_queue": 20, "saturation_kv_cache": 0.8,
//  "prefix_weight": 20, "queue_weight": 2, "kv_cache_weight": 1, "lora_weight": 2,
//  "session_weight": 4, "prefix_blocks_per_endpoint": 16384,
//  "endpoints": ["127.0.0.1:18111", "127.0.0.1:18112"], "metrics_path": "/metrics",
//  "session_header": "x-session-id", "session_entries": 65536}
//
// Only `pool` is required: the name under which the background worker publishes this pool's
// metric snapshots. `endpoints` is the scrape list: the background worker scrapes
// `metrics_path` of each while this cluster config lives (EndpointScraper.swift says why the list
// travels with the cluster). Without it nothing is scraped for this config and the picker uses
// least-request unless another cluster config of the same pool brings a list. Parsed strictly (unknown field, wrong type or out of range: refused with the
// field named), so a cluster never runs a picker that silently ignores a typo.

public struct EndpointPickerConfig: Sendable, Equatable {
    public var pool: String
    public var scoring = EndpointScoringConfig()
    /// Entries per endpoint of each worker's prefix index (see `PrefixIndex`).
    public var prefixBlocksPerEndpoint = 16_384
    /// The endpoints to scrape, as Envoy names its hosts ("ip:port", "[ipv6]:port"); at most
    /// `EndpointSet.capacity`, no duplicates.
    public var endpoints: [String] = []
    /// The path of each endpoint's Prometheus page.
    public var metricsPath = "/metrics"
    /// The request header naming a session (lower case), or nil for no session affinity
    /// (SessionTable.swift).
    public var sessionHeader: String?
    /// Sessions remembered per cluster config (`SessionTable`).
    public var sessionEntries = 65_536

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
        if let endpoints = try root.optionalStringArray("endpoints") {
            guard endpoints.count <= EndpointSet.capacity else {
                throw ConfigError(path: "endpoints", problem: "at most \(EndpointSet.capacity) endpoints, got \(endpoints.count)")
            }
            var seen = Set<String>()
            for (index, endpoint) in endpoints.enumerated() {
                guard HostAddress.isValid(endpoint) else {
                    throw ConfigError(
                        path: "endpoints[\(index)]",
                        problem: "must be an IP address and port as Envoy names a host (\"10.0.0.7:8000\", \"[::1]:8000\"), got \"\(endpoint.prefix(80))\"")
                }
                guard seen.insert(endpoint).inserted else {
                    throw ConfigError(path: "endpoints[\(index)]", problem: "\"\(endpoint)\" is listed twice")
                }
            }
            config.endpoints = endpoints
        }
        if let path = try root.optionalString("metrics_path") {
            guard path.utf8.first == UInt8(ascii: "/"), path.utf8.count <= 256,
                path.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F })
            else {
                throw ConfigError(path: "metrics_path", problem: "must be an absolute path of 1 to 256 printable ASCII characters without spaces")
            }
            config.metricsPath = path
        }
        if let header = try root.optionalString("session_header") {
            let name = String(decoding: header.utf8.map(HTTPToken.lowercasedASCII), as: UTF8.self)
            guard (1...128).contains(name.utf8.count), name.utf8.allSatisfy(HTTPToken.isTokenByte), !name.hasPrefix("x-sluice-")
            else {
                throw ConfigError(
                    path: "session_header",
                    problem: "must be an HTTP header name of 1 to 128 token characters that does not start with x-sluice- (the gateway's own headers), got \"\(header.prefix(80))\"")
            }
            config.sessionHeader = name
        }
        let sessions = SessionTable.capacityRange
        if let value = try root.optionalInt("session_entries", in: Int64(sessions.lowerBound)...Int64(sessions.upperBound)) {
            config.sessionEntries = Int(value)
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

/// Host addresses as Envoy writes them for a host ("ip:port"): what the scraper targets and the
/// picker matches hosts by.
public enum HostAddress {
    /// An IPv4 literal and port ("10.0.0.7:8000") or a bracketed IPv6 literal and port
    /// ("[::1]:8000"); ports 1...65535.
    public static func isValid(_ address: String) -> Bool {
        let bytes = Array(address.utf8)
        guard bytes.count <= 64, let colon = bytes.lastIndex(of: UInt8(ascii: ":")) else { return false }
        let portBytes = bytes[(colon + 1)...]
        guard (1...5).contains(portBytes.count), portBytes.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
            portBytes.first != UInt8(ascii: "0"),
            let port = Int(String(decoding: portBytes, as: UTF8.self)), (1...65535).contains(port)
        else { return false }
        let host = bytes[..<colon]
        if host.first == UInt8(ascii: "[") {
            guard host.count >= 4, host.last == UInt8(ascii: "]") else { return false }
            let inner = host.dropFirst().dropLast()
            return inner.contains(UInt8(ascii: ":"))
                && inner.allSatisfy { byte in
                    (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66) || (byte >= 0x41 && byte <= 0x46)
                        || byte == UInt8(ascii: ":") || byte == UInt8(ascii: ".")
                }
        }
        let parts = host.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return parts.count == 4
            && parts.allSatisfy { part in
                (1...3).contains(part.count) && part.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
                    && (part.count == 1 || part.first != UInt8(ascii: "0"))
                    && (Int(String(decoding: part, as: UTF8.self)) ?? 256) <= 255
            }
    }
}
