// The gateway filter's configuration (`filter_config` of the `sluice` HTTP filter), as JSON.
//
// {
//   "api_keys": [ { "name": "demo", "key": "sk-sluice-demo" },
//                 { "name": "ci", "key_sha256": "<64 hex chars>", "team": "platform",
//                   "models": ["gpt-4o-mini", "claude-*"], "expires_at": 1798761600, "revoked": false } ],
//   "models":   [ { "id": "gpt-4o-mini", "owned_by": "openai", "created": 1715367049, "route": "openai" } ],
//   "routes":   [ { "name": "anthropic", "model_prefix": "claude-" },
//                 { "name": "tenant-a", "models": ["gpt-4o"], "headers": { "x-tenant": "a" } } ],
//   "max_request_bytes": 8388608,
//   "team_limits":  { "research": { "tokens_per_minute": 200000, "budget_usd_per_day": 50 } },
//   "model_limits": { "gpt-4o": { "requests_per_minute": 1000 } },
//   "prices": { "gpt-4o-mini": { "input": 0.15, "cached_input": 0.075, "output": 0.6 } },
//   "default_output_tokens_estimate": 1024,
//   "response_cost_header": "x-sluice-cost-usd",
//   "metadata_keys": ["consumer", "model", "cost_usd"],
//   "jwt": { "payload_header": "x-sluice-jwt-payload", "payload_metadata_key": "jwt_payload" }
// }
//
// A key's own limits go in `api_keys[].limits` (same fields as team/model limits).
//
// Fleet leases (only when the module's background worker runs with `leases`): what a scope does
// when sluiced is unreachable past its lease, `"lease_failure": {"policy": "fail_closed"}` or
// `{"policy": "fail_open", "local_cap_percent": 10}`, inside any limits object (the key's
// `limits`, an entry of `team_limits` or `model_limits`), and the default for the others at the
// top level as `"quota_lease_failure"` (fail_open at 10 % when absent).
//
// A model's `route` (and each rule's `name`) is the value the filter puts in the `x-sluice-route`
// request header before asking Envoy to re-run route matching; Envoy's route table maps it to
// the backend cluster(s). Rules are tried in order after the listed models' own routes.

/// One client (virtual) key as configured. A plaintext `key` is hashed at load and never kept.
public struct ClientKeyConfig: Sendable, Equatable {
    public var name: String
    public var sha256: SHA256Digest
    /// Revoked keys are refused with 401 (`disabled` is accepted as a synonym in the config).
    public var revoked: Bool
    /// The team the key's consumer belongs to (team quotas and metrics), if any.
    public var team: String?
    /// Models the key may use; nil = all. A trailing `*` matches a prefix (`claude-*`).
    public var allowedModels: ModelPatterns?
    /// Unix seconds after which the key is refused (nil = never).
    public var expiresAt: Int64?
    /// The key's own quotas (requests/tokens per minute, dollar budgets).
    public var limits: QuotaLimits = QuotaLimits()

    public init(
        name: String, sha256: SHA256Digest, revoked: Bool = false, team: String? = nil, allowedModels: ModelPatterns? = nil,
        expiresAt: Int64? = nil
    ) {
        self.name = name
        self.sha256 = sha256
        self.revoked = revoked
        self.team = team
        self.allowedModels = allowedModels
        self.expiresAt = expiresAt
    }
}

/// Model names or prefixes (`gpt-4o`, `claude-*`, `*`).
public struct ModelPatterns: Sendable, Equatable {
    public var exact: Set<String>
    public var prefixes: [String]

    public init(_ patterns: [String]) {
        exact = Set(patterns.filter { !$0.hasSuffix("*") })
        prefixes = patterns.filter { $0.hasSuffix("*") }.map { String($0.dropLast()) }
    }

    public func matches(_ model: String) -> Bool {
        exact.contains(model) || prefixes.contains { model.hasPrefix($0) }
    }
}

/// One model listed by `GET /v1/models`.
public struct ModelConfig: Sendable, Equatable {
    public var id: String
    public var ownedBy: String
    public var created: Int64
    /// The route serving this model (nil: listed only; a rule in `routes` must take it).
    public var route: String?
    /// The route's cluster is a pool of model servers picked by the `sluice_endpoint_picker` load
    /// balancer: the filter hands it the prompt's prefix hashes (`EndpointHandOver`).
    public var endpointPicking = false
    /// The model id is a LoRA adapter the pool's servers load (vLLM serves adapters under their
    /// own model names): the hand-over names it, so the picker prefers servers that have it.
    public var loraAdapter = false

    public init(id: String, ownedBy: String = "sluice", created: Int64 = 0, route: String? = nil) {
        self.id = id
        self.ownedBy = ownedBy
        self.created = created
        self.route = route
    }
}

public struct GatewayConfig: Sendable, Equatable {
    public static let defaultMaxRequestBytes = 8 * 1024 * 1024

    public var apiKeys: [ClientKeyConfig]
    public var models: [ModelConfig]
    public var routes: [RouteRule]
    /// Largest request body the gateway buffers to read `model`; beyond it, 413.
    public var maxRequestBytes: Int
    public var teamLimits: [String: QuotaLimits] = [:]
    public var modelLimits: [String: QuotaLimits] = [:]
    /// The lease failure policy of each scope whose limits state one.
    public var leaseFailure: [QuotaScope: LeaseFailureConfig] = [:]
    /// The lease failure policy of the other scopes (`quota_lease_failure`).
    public var defaultLeaseFailure: LeaseFailureConfig = .standard
    public var prices = PriceTable()
    /// Output tokens a request without `max_tokens` is assumed to use when admitted.
    public var defaultOutputTokensEstimate = 1024
    /// Identity from JWTs verified by Envoy's jwt_authn (see JWTIdentity.swift); nil = keys only.
    public var jwt: JWTIdentityConfig?
    /// Response header carrying each request's cost in USD (opt-in; nil = none). Non-streamed
    /// responses are held until their usage is known; streams end with an SSE comment instead.
    public var responseCostHeader: String?
    /// The `sluice` dynamic-metadata keys written for access logs (`metadata_keys`; all when
    /// absent). Every key is an edit Envoy makes per request, read or not.
    public var metadataKeys = FilterMetadataKeys.all
    /// Models served by endpoint-picked pools (`models[].endpoint_picking`), each with whether it
    /// names a LoRA adapter: one lookup per routed request, skipped when empty.
    public var endpointPickingModels: [String: Bool] = [:]

    public init(
        apiKeys: [ClientKeyConfig] = [], models: [ModelConfig] = [], routes: [RouteRule] = [],
        maxRequestBytes: Int = GatewayConfig.defaultMaxRequestBytes
    ) {
        self.apiKeys = apiKeys
        self.models = models
        self.routes = routes
        self.maxRequestBytes = maxRequestBytes
    }

    /// Routing rules in evaluation order: each listed model's own route first, then `routes`.
    public var routingRules: [RouteRule] {
        models.compactMap { model in model.route.map { RouteRule(name: $0, models: [model.id]) } } + routes
    }

    /// Parses and validates `filter_config` bytes; the error names the offending field.
    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> GatewayConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(path: "", problem: "filter_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        var config = GatewayConfig()

        var keyNames: Set<String> = []
        var keyHashes: Set<SHA256Digest> = []
        try root.forEachObject("api_keys") { (entry: inout ConfigObject) throws(ConfigError) in
            let name = try entry.nonEmptyString("name")
            let plaintext = try entry.optionalString("key")
            let hashed = try entry.optionalString("key_sha256")
            let digest: SHA256Digest
            switch (plaintext, hashed) {
            case (let key?, nil):
                guard !key.isEmpty else { throw ConfigError(path: entry.childPath("key"), problem: "must not be empty") }
                digest = SHA256.hash(key)
            case (nil, let hex?):
                guard let parsed = SHA256Digest(hex: hex) else {
                    throw ConfigError(path: entry.childPath("key_sha256"), problem: "expected 64 hexadecimal characters")
                }
                digest = parsed
            case (nil, nil):
                throw ConfigError(path: entry.path, problem: "needs one of 'key' or 'key_sha256'")
            case (_?, _?):
                throw ConfigError(path: entry.path, problem: "has both 'key' and 'key_sha256'; give only one")
            }
            guard keyNames.insert(name).inserted else {
                throw ConfigError(path: entry.childPath("name"), problem: "duplicate key name '\(name)'")
            }
            guard keyHashes.insert(digest).inserted else {
                throw ConfigError(path: entry.path, problem: "the same key is configured twice")
            }
            let revoked = try entry.optionalBool("revoked") ?? false
            let disabled = try entry.optionalBool("disabled") ?? false
            let team = try entry.optionalString("team")
            if let team, team.isEmpty { throw ConfigError(path: entry.childPath("team"), problem: "must not be empty") }
            var allowed: ModelPatterns?
            if let models = try entry.optionalStringArray("models") {
                allowed = try ModelPatterns.validated(models, path: entry.childPath("models"))
            }
            let expiresAt = try entry.optionalInt("expires_at", in: 0...253_402_300_799)
            var key = ClientKeyConfig(
                name: name, sha256: digest, revoked: revoked || disabled, team: team, allowedModels: allowed,
                expiresAt: expiresAt)
            if var limits = try entry.optionalObject("limits") {
                key.limits = try QuotaLimits.read(&limits)
                if let failure = try LeaseFailureConfig.read(&limits, "lease_failure") { config.leaseFailure[.key(name)] = failure }
                try limits.finish()
            }
            config.apiKeys.append(key)
        }

        var modelIDs: Set<String> = []
        try root.forEachObject("models") { (entry: inout ConfigObject) throws(ConfigError) in
            let id = try entry.nonEmptyString("id")
            guard modelIDs.insert(id).inserted else {
                throw ConfigError(path: entry.childPath("id"), problem: "duplicate model id '\(id)'")
            }
            let ownedBy = try entry.optionalString("owned_by") ?? "sluice"
            let created = try entry.optionalInt("created", in: 0...Int64(Int32.max) * 4) ?? 0
            let route = try entry.optionalString("route")
            if let route, !isValidRouteName(route) {
                throw ConfigError(path: entry.childPath("route"), problem: routeNameProblem)
            }
            var model = ModelConfig(id: id, ownedBy: ownedBy, created: created, route: route)
            model.endpointPicking = try entry.optionalBool("endpoint_picking") ?? false
            model.loraAdapter = try entry.optionalBool("lora_adapter") ?? false
            if model.loraAdapter && !model.endpointPicking {
                throw ConfigError(
                    path: entry.childPath("lora_adapter"), problem: "needs \"endpoint_picking\": true (adapters matter only to a picked pool)")
            }
            if model.endpointPicking { config.endpointPickingModels[id] = model.loraAdapter }
            config.models.append(model)
        }

        try root.forEachObject("routes") { (entry: inout ConfigObject) throws(ConfigError) in
            let name = try entry.nonEmptyString("name")
            guard isValidRouteName(name) else { throw ConfigError(path: entry.childPath("name"), problem: routeNameProblem) }
            let models = try entry.optionalStringArray("models") ?? []
            let prefix = try entry.optionalString("model_prefix")
            var headers: [(name: String, value: String)] = []
            if var matcher = try entry.optionalObject("headers") {
                for key in matcher.remainingKeys {
                    let value = try matcher.string(key)
                    headers.append((key.lowercased(), value))
                }
                try matcher.finish()
            }
            guard !models.isEmpty || prefix != nil else {
                throw ConfigError(path: entry.path, problem: "needs 'models' or 'model_prefix' (\"\" matches every model)")
            }
            config.routes.append(RouteRule(name: name, models: models, modelPrefix: prefix, headers: headers))
        }

        if let limit = try root.optionalInt("max_request_bytes", in: 1024...(1 << 30)) {
            config.maxRequestBytes = Int(limit)
        }
        config.teamLimits = try readLimitsMap(&root, "team_limits") { config.leaseFailure[.team($0)] = $1 }
        config.modelLimits = try readLimitsMap(&root, "model_limits") { config.leaseFailure[.model($0)] = $1 }
        if let failure = try LeaseFailureConfig.read(&root, "quota_lease_failure") { config.defaultLeaseFailure = failure }
        if var prices = try root.optionalObject("prices") {
            config.prices = try PriceTable.read(&prices)
            try prices.finish()
        }
        if let estimate = try root.optionalInt("default_output_tokens_estimate", in: 0...10_000_000) {
            config.defaultOutputTokensEstimate = Int(estimate)
        }
        config.responseCostHeader = try root.optionalHeaderName("response_cost_header")
        if let names = try root.optionalStringArray("metadata_keys") {
            config.metadataKeys = []
            for (index, name) in names.enumerated() {
                guard let key = FilterMetadataKey(name: name) else {
                    let known = FilterMetadataKey.allCases.map { $0.name.description }.joined(separator: ", ")
                    throw ConfigError(
                        path: "metadata_keys[\(index)]", problem: "unknown metadata key '\(name)'; expected one of: \(known)")
                }
                config.metadataKeys.insert(FilterMetadataKeys(key))
            }
        }
        if var jwt = try root.optionalObject("jwt") {
            config.jwt = try JWTIdentityConfig.read(&jwt)
            try jwt.finish()
        }
        try root.finish()
        return config
    }
}

/// `{"<name>": {limits}, ...}` under `key`; each `lease_failure` goes to `leaseFailure`.
private func readLimitsMap(
    _ root: inout ConfigObject, _ key: String, leaseFailure: (String, LeaseFailureConfig) -> Void
) throws(ConfigError) -> [String: QuotaLimits] {
    guard var map = try root.optionalObject(key) else { return [:] }
    var result: [String: QuotaLimits] = [:]
    for name in map.remainingKeys {
        guard var entry = try map.optionalObject(name) else {
            throw ConfigError(path: map.childPath(name), problem: "expected an object, got null")
        }
        result[name] = try QuotaLimits.read(&entry)
        if let failure = try LeaseFailureConfig.read(&entry, "lease_failure") { leaseFailure(name, failure) }
        try entry.finish()
    }
    try map.finish()
    return result
}

/// Route names travel in an HTTP header: keep them to a safe token alphabet.
private func isValidRouteName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 128
        && name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
}

private let routeNameProblem = "must be 1-128 characters of letters, digits, '-', '_' or '.'"
