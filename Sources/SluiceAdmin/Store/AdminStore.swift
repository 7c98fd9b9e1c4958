// The admin API's persistence: consumers (virtual keys) and teams created at run time, kept in
// SQLite (one sluiced) or PostgreSQL (several sluiced replicas sharing one database).
//
// A store hands sluiced the same `ConsumerSpec` / `TeamSpec` values the config file produces,
// with `source: .database`, so the config compiler merges both (the database wins a name). A key's
// plaintext exists only in the `IssuedKey` returned by `createConsumer` and `rotateKey`; the store
// keeps its SHA-256. Every write bumps one version number in the same transaction; sluiced
// watches `changes(pollInterval:)` to recompile and push.
public import SluiceControl
public import SluiceCore

/// The consumers and teams of the admin API, and a version that every write increments.
///
/// Every method validates its input (`AdminValidation`) before writing, so the CLI's direct
/// access is held to the same rules as the HTTP API. Errors are `AdminError`s: `.invalidRequest`
/// with the field named, `.notFound`, `.conflict` (a duplicate name), `.storeFailure`.
public protocol AdminStore: UsageStore {
    /// Creates a consumer with a freshly generated key.
    /// - Returns: The stored consumer and the key's plaintext, which is not kept anywhere.
    /// - Throws: `.conflict` when the name is taken, `.invalidRequest` for bad fields.
    func createConsumer(_ draft: ConsumerDraft) async throws -> IssuedKey
    /// Every database consumer, ordered by name.
    func consumers() async throws -> [ConsumerSpec]
    /// The database consumer named `name`, or nil.
    func consumer(named name: String) async throws -> ConsumerSpec?
    /// Applies `changes` to the consumer named `name` (fields left nil are kept).
    /// - Throws: `.notFound`, `.invalidRequest`.
    func updateConsumer(named name: String, _ changes: ConsumerChanges) async throws -> ConsumerSpec
    /// Replaces the consumer's key with a new one; the old key stops working at the next push.
    /// - Returns: The consumer and the new key's plaintext, returned this once.
    func rotateKey(ofConsumer name: String) async throws -> IssuedKey
    /// Deletes the consumer named `name`. - Throws: `.notFound`.
    func deleteConsumer(named name: String) async throws

    /// Creates a team. - Throws: `.conflict` when the name is taken, `.invalidRequest`.
    func createTeam(_ team: TeamDraft) async throws -> TeamSpec
    /// Replaces the limits and budgets of the team named `name`. - Throws: `.notFound`.
    func setTeamLimits(named name: String, _ limits: QuotaLimits) async throws -> TeamSpec
    /// Every database team, ordered by name.
    func teams() async throws -> [TeamSpec]
    /// The database team named `name`, or nil.
    func team(named name: String) async throws -> TeamSpec?
    /// Deletes the team named `name` (its consumers keep the team name). - Throws: `.notFound`.
    func deleteTeam(named name: String) async throws

    /// Every consumer and team with the version they are at, read in one transaction: what sluiced
    /// compiles and pushes. (Reading `consumers()`, `teams()` and `version()` one after the other
    /// can pair a version with data from before a write that landed in between.)
    func snapshot() async throws -> AdminSnapshot
    /// The version of the stored data: starts at 0, and every successful write adds one.
    func version() async throws -> Int64
    /// The current version at once, then each new one: at once after a write through this store,
    /// and within `pollInterval` after a write by another process or replica. The stream keeps
    /// only the newest undelivered version; it ends when the consumer cancels or the store closes.
    func changes(pollInterval: Duration) -> AsyncStream<Int64>
    /// Releases connections and ends change streams. The store must not be used afterwards.
    func close() async
}

// MARK: - Inputs and outputs

/// A consumer to create; the store generates its key.
public struct ConsumerDraft: Sendable, Equatable {
    public var name: String
    public var team: String?
    /// Model names or prefixes (`claude-*`); nil = all models.
    public var allowedModels: [String]?
    /// Unix seconds after which the key is refused; nil = never.
    public var expiresAt: Int64?
    public var disabled: Bool
    public var limits: QuotaLimits

    public init(
        name: String, team: String? = nil, allowedModels: [String]? = nil, expiresAt: Int64? = nil,
        disabled: Bool = false, limits: QuotaLimits = QuotaLimits()
    ) {
        self.name = name
        self.team = team
        self.allowedModels = allowedModels
        self.expiresAt = expiresAt
        self.disabled = disabled
        self.limits = limits
    }
}

/// Changes to a consumer. A nil field is left as it is; for the optional fields, `.some(nil)`
/// clears the value (`team: .some(nil)` removes the consumer from its team).
public struct ConsumerChanges: Sendable, Equatable {
    public var team: String??
    public var allowedModels: [String]??
    public var expiresAt: Int64??
    public var disabled: Bool?
    /// Replaces all of the consumer's limits.
    public var limits: QuotaLimits?

    public init(
        team: String?? = nil, allowedModels: [String]?? = nil, expiresAt: Int64?? = nil, disabled: Bool? = nil,
        limits: QuotaLimits? = nil
    ) {
        self.team = team
        self.allowedModels = allowedModels
        self.expiresAt = expiresAt
        self.disabled = disabled
        self.limits = limits
    }

    /// True when nothing would change.
    public var isEmpty: Bool { self == ConsumerChanges() }

    /// `consumer` with these changes applied.
    public func applied(to consumer: ConsumerSpec) -> ConsumerSpec {
        var result = consumer
        if let team { result.team = team }
        if let allowedModels { result.allowedModels = allowedModels }
        if let expiresAt { result.expiresAt = expiresAt }
        if let disabled { result.disabled = disabled }
        if let limits { result.limits = limits }
        return result
    }
}

/// A team to create.
public struct TeamDraft: Sendable, Equatable {
    public var name: String
    public var limits: QuotaLimits

    public init(name: String, limits: QuotaLimits = QuotaLimits()) {
        self.name = name
        self.limits = limits
    }
}

/// The whole database at one version.
public struct AdminSnapshot: Sendable, Equatable {
    public var version: Int64
    /// Ordered by name, as `consumers()`.
    public var consumers: [ConsumerSpec]
    /// Ordered by name, as `teams()`.
    public var teams: [TeamSpec]

    public init(version: Int64, consumers: [ConsumerSpec], teams: [TeamSpec]) {
        self.version = version
        self.consumers = consumers
        self.teams = teams
    }
}

/// A consumer with the plaintext of its new key: the only time the plaintext exists.
public struct IssuedKey: Sendable, Equatable {
    public var consumer: ConsumerSpec
    /// `sk-sluice-…`; give it to the client, it is not stored.
    public var secret: String

    public init(consumer: ConsumerSpec, secret: String) {
        self.consumer = consumer
        self.secret = secret
    }
}

// MARK: - Conveniences

extension AdminStore {
    /// Disables (`true`) or re-enables (`false`) the consumer's key.
    @discardableResult
    public func setDisabled(_ disabled: Bool, consumer name: String) async throws -> ConsumerSpec {
        try await updateConsumer(named: name, ConsumerChanges(disabled: disabled))
    }

    /// Puts the consumer in `team`, or in no team when nil.
    @discardableResult
    public func setTeam(_ team: String?, consumer name: String) async throws -> ConsumerSpec {
        try await updateConsumer(named: name, ConsumerChanges(team: .some(team)))
    }

    /// Restricts the consumer to `models` (names or `prefix*`), or allows all when nil.
    @discardableResult
    public func setAllowedModels(_ models: [String]?, consumer name: String) async throws -> ConsumerSpec {
        try await updateConsumer(named: name, ConsumerChanges(allowedModels: .some(models)))
    }

    /// Sets the key's expiry (Unix seconds), or removes it when nil.
    @discardableResult
    public func setExpiry(_ expiresAt: Int64?, consumer name: String) async throws -> ConsumerSpec {
        try await updateConsumer(named: name, ConsumerChanges(expiresAt: .some(expiresAt)))
    }

    /// Replaces the consumer's limits and budgets.
    @discardableResult
    public func setLimits(_ limits: QuotaLimits, consumer name: String) async throws -> ConsumerSpec {
        try await updateConsumer(named: name, ConsumerChanges(limits: limits))
    }
}
