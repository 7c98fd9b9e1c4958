// The limits sluiced grants leases against: every scope's limits as sluiced itself serves them to
// the Envoys (the `sluice` filter's config it compiles from sluice.yaml and the admin database's
// keys and teams, sent through ECDS). The Envoys also state a limit in each lease item, but an
// Envoy with a stale or tampered config must not be able to raise a budget for the whole fleet:
// sluiced's own table decides, and an Envoy's figure is only compared with it.
//
// Read from the compiled filter config with the module's own parser (`GatewayConfig.parse`), so
// the table is exactly what the module enforces: `api_keys[].limits` (key scopes, by consumer
// name), `team_limits`, `model_limits`, and `jwt.limits` for JWT subjects (key scopes named
// `consumer_prefix` + subject, which exist only at run time).
public import SluiceCore

/// Every scope's limit per leased dimension, as sluiced serves it.
public struct LeaseLimits: Sendable, Equatable {
    /// Key, team and model scopes named in the config, with the limits they set.
    public private(set) var scopes: [QuotaScope: QuotaLimits]
    /// JWT subjects: key scopes whose name starts with `prefix` take `limits` (every subject
    /// counted on its own). nil when the config reads no JWTs.
    public private(set) var subjects: (prefix: String, limits: QuotaLimits)?
    /// The snapshot version the table was read from (for messages); nil before the first.
    public private(set) var version: String?

    /// A table that limits nothing: every lease item is refused until the config is known.
    public init() {
        scopes = [:]
    }

    /// A table of explicit limits (tests, and tools that do not compile a config).
    public init(_ limits: [LeaseKey: Int64], version: String? = nil) {
        var scopes: [QuotaScope: QuotaLimits] = [:]
        for (key, value) in limits {
            var scopeLimits = scopes[key.scope] ?? QuotaLimits()
            key.dimension.set(value, in: &scopeLimits)
            scopes[key.scope] = scopeLimits
        }
        self.scopes = scopes
        self.version = version
    }

    /// The table of a parsed `sluice` filter config.
    public init(gateway: GatewayConfig, version: String? = nil) {
        var scopes: [QuotaScope: QuotaLimits] = [:]
        // Configured keys are kept even without limits: such a key is not a JWT subject either.
        for key in gateway.apiKeys { scopes[.key(key.name)] = key.limits }
        for (team, limits) in gateway.teamLimits { scopes[.team(team)] = limits }
        for (model, limits) in gateway.modelLimits { scopes[.model(model)] = limits }
        self.scopes = scopes
        if let jwt = gateway.jwt, !jwt.limits.isEmpty { subjects = (jwt.consumerPrefix, jwt.limits) }
        self.version = version
    }

    /// The table of the filter config bytes sluiced serves (`EnvoyPlan.gatewayFilterConfig`).
    /// - Throws: the module parser's `ConfigError` (sluiced never serves a config it refuses).
    public init(filterConfig bytes: [UInt8], version: String? = nil) throws(ConfigError) {
        self.init(gateway: try GatewayConfig.parse(bytes), version: version)
    }

    /// The same table, labelled with the snapshot version it was served in.
    public func versioned(_ version: String) -> LeaseLimits {
        var copy = self
        copy.version = version
        return copy
    }

    /// sluiced's limit of `key`, or nil when sluiced does not limit that scope in that dimension.
    public func limit(_ key: LeaseKey) -> Int64? {
        if let limits = scopes[key.scope] { return key.dimension.limit(in: limits) }
        if key.scope.kind == .key, let subjects, key.scope.name.hasPrefix(subjects.prefix),
            key.scope.name.utf8.count > subjects.prefix.utf8.count
        {
            return key.dimension.limit(in: subjects.limits)
        }
        return nil
    }

    public static func == (lhs: LeaseLimits, rhs: LeaseLimits) -> Bool {
        lhs.scopes == rhs.scopes && lhs.subjects?.prefix == rhs.subjects?.prefix
            && lhs.subjects?.limits == rhs.subjects?.limits && lhs.version == rhs.version
    }

    /// Why an item of `key` gets no slice: sluiced does not limit it.
    func notLimitedProblem(_ key: LeaseKey) -> String {
        let served = version.map { " (snapshot \($0))" } ?? ""
        if version == nil && scopes.isEmpty && subjects == nil {
            return "\(key.scope) has no \(key.dimension.rawValue) limit: sluiced has not loaded its config yet; no slice is granted"
        }
        return "\(key.scope) has no \(key.dimension.rawValue) limit in the config sluiced serves\(served); "
            + "no slice is granted (is this Envoy's config older or newer than sluiced's?)"
    }
}

extension LeaseDimension {
    /// Sets this dimension's limit in `limits`.
    func set(_ value: Int64, in limits: inout QuotaLimits) {
        switch self {
        case .requestsPerMinute: limits.requestsPerMinute = value
        case .tokensPerMinute: limits.tokensPerMinute = value
        case .inputTokensPerMinute: limits.inputTokensPerMinute = value
        case .outputTokensPerMinute: limits.outputTokensPerMinute = value
        case .costPerDay: limits.budgetMicrosPerDay = value
        case .costPerMonth: limits.budgetMicrosPerMonth = value
        }
    }
}
