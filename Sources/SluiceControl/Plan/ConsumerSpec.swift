// Consumers (virtual keys) and teams as sluiced knows them: from the YAML config, and from the
// admin API's database. Both compile into the `sluice` filter's config; on a name conflict the
// database wins, and every consumer remembers where it came from so the admin API can say.
public import SluiceCore

/// Where a consumer or team definition comes from.
public enum DefinitionSource: String, Sendable, Equatable, Codable {
    /// The YAML config file.
    case config
    /// The admin API's database.
    case database
}

/// One consumer: a client key (only its SHA-256 is ever kept) and what it may do.
public struct ConsumerSpec: Sendable, Equatable {
    /// Unique name; metrics, access logs and quotas use it.
    public var name: String
    public var keySHA256: SHA256Digest
    public var team: String?
    /// Model names or prefixes (`claude-*`) the key may use; nil = all.
    public var allowedModels: [String]?
    /// Unix seconds after which the key is refused; nil = never.
    public var expiresAt: Int64?
    /// A disabled key is refused with 401 `api_key_revoked`.
    public var disabled: Bool
    public var limits: QuotaLimits
    public var source: DefinitionSource

    public init(
        name: String, keySHA256: SHA256Digest, team: String? = nil, allowedModels: [String]? = nil, expiresAt: Int64? = nil,
        disabled: Bool = false, limits: QuotaLimits = QuotaLimits(), source: DefinitionSource
    ) {
        self.name = name
        self.keySHA256 = keySHA256
        self.team = team
        self.allowedModels = allowedModels
        self.expiresAt = expiresAt
        self.disabled = disabled
        self.limits = limits
        self.source = source
    }
}

/// One team: limits and budgets shared by its consumers.
public struct TeamSpec: Sendable, Equatable {
    public var name: String
    public var limits: QuotaLimits
    public var source: DefinitionSource

    public init(name: String, limits: QuotaLimits = QuotaLimits(), source: DefinitionSource) {
        self.name = name
        self.limits = limits
        self.source = source
    }
}

extension ConsumerSpec {
    /// `config` and `database` consumers merged by name; the database's wins a conflict.
    /// Order: the config's in their order (replaced in place when the database has the name),
    /// then the database's others in their order.
    public static func merged(config: [ConsumerSpec], database: [ConsumerSpec]) -> [ConsumerSpec] {
        let fromDatabase = Dictionary(database.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        var seen = Set<String>()
        var result: [ConsumerSpec] = []
        for consumer in config where seen.insert(consumer.name).inserted {
            result.append(fromDatabase[consumer.name] ?? consumer)
        }
        for consumer in database where seen.insert(consumer.name).inserted { result.append(consumer) }
        return result
    }
}

extension TeamSpec {
    /// `config` and `database` teams merged by name; the database's wins a conflict.
    public static func merged(config: [TeamSpec], database: [TeamSpec]) -> [TeamSpec] {
        let fromDatabase = Dictionary(database.map { ($0.name, $0) }, uniquingKeysWith: { _, last in last })
        var seen = Set<String>()
        var result: [TeamSpec] = []
        for team in config where seen.insert(team.name).inserted { result.append(fromDatabase[team.name] ?? team) }
        for team in database where seen.insert(team.name).inserted { result.append(team) }
        return result
    }
}
