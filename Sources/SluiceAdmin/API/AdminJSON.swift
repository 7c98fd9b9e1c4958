// The admin API's JSON: response bodies (Codable, snake_case, sorted keys) and request bodies read
// with SluiceCore's strict config reader, so a bad request names its field
// (`limits.budget_usd_per_day: must be between 0.0 and 1000000.0, got -1.0`) and an unknown field
// (a misspelt limit) is refused instead of ignored. Limits use the config file's field names.
import Foundation
import SluiceControl
import SluiceCore

// MARK: - Response bodies

/// Limits as the config file writes them: budgets in dollars.
struct LimitsJSON: Codable, Equatable {
    var requestsPerMinute: Int64?
    var tokensPerMinute: Int64?
    var inputTokensPerMinute: Int64?
    var outputTokensPerMinute: Int64?
    var budgetUSDPerDay: Double?
    var budgetUSDPerMonth: Double?

    init(_ limits: QuotaLimits) {
        requestsPerMinute = limits.requestsPerMinute
        tokensPerMinute = limits.tokensPerMinute
        inputTokensPerMinute = limits.inputTokensPerMinute
        outputTokensPerMinute = limits.outputTokensPerMinute
        budgetUSDPerDay = limits.budgetMicrosPerDay.map { Double($0) / 1_000_000 }
        budgetUSDPerMonth = limits.budgetMicrosPerMonth.map { Double($0) / 1_000_000 }
    }

    enum CodingKeys: String, CodingKey {
        case requestsPerMinute = "requests_per_minute"
        case tokensPerMinute = "tokens_per_minute"
        case inputTokensPerMinute = "input_tokens_per_minute"
        case outputTokensPerMinute = "output_tokens_per_minute"
        case budgetUSDPerDay = "budget_usd_per_day"
        case budgetUSDPerMonth = "budget_usd_per_month"
    }
}

struct ConsumerJSON: Codable, Equatable {
    var name: String
    var source: DefinitionSource
    /// True for a database consumer that replaces a config consumer of the same name.
    var overridesConfig: Bool?
    var keySHA256: String
    var team: String?
    var models: [String]?
    var expiresAt: Int64?
    var disabled: Bool
    var limits: LimitsJSON

    init(_ consumer: ConsumerSpec, overridesConfig: Bool = false) {
        name = consumer.name
        source = consumer.source
        self.overridesConfig = overridesConfig ? true : nil
        keySHA256 = consumer.keySHA256.hex
        team = consumer.team
        models = consumer.allowedModels
        expiresAt = consumer.expiresAt
        disabled = consumer.disabled
        limits = LimitsJSON(consumer.limits)
    }

    enum CodingKeys: String, CodingKey {
        case name, source
        case overridesConfig = "overrides_config"
        case keySHA256 = "key_sha256"
        case team, models
        case expiresAt = "expires_at"
        case disabled, limits
    }
}

struct IssuedKeyJSON: Codable, Equatable {
    var consumer: ConsumerJSON
    /// The key's plaintext: shown this once.
    var key: String
    var note = "Store this key now: only its SHA-256 is kept, and it is not shown again."
}

struct ConsumerListJSON: Codable, Equatable {
    var consumers: [ConsumerJSON]
}

struct TeamJSON: Codable, Equatable {
    var name: String
    var source: DefinitionSource
    var overridesConfig: Bool?
    var limits: LimitsJSON

    init(_ team: TeamSpec, overridesConfig: Bool = false) {
        name = team.name
        source = team.source
        self.overridesConfig = overridesConfig ? true : nil
        limits = LimitsJSON(team.limits)
    }

    enum CodingKeys: String, CodingKey {
        case name, source
        case overridesConfig = "overrides_config"
        case limits
    }
}

struct TeamListJSON: Codable, Equatable {
    var teams: [TeamJSON]
}

struct StatusJSON: Codable, Equatable {
    var adminStoreVersion: Int64
    var servedVersion: String?
    var nodes: [EnvoyNodeStatus]
    var lastRefusedChange: String?

    enum CodingKeys: String, CodingKey {
        case adminStoreVersion = "admin_store_version"
        case servedVersion = "served_version"
        case nodes
        case lastRefusedChange = "last_refused_change"
    }
}

struct ErrorJSON: Codable, Equatable {
    struct Detail: Codable, Equatable {
        var code: String
        var message: String
        var field: String?
    }

    var error: Detail
}

enum AdminJSON {
    static func encode(_ value: some Encodable) -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        // Every body here is made of strings, integers, booleans and finite doubles.
        return (try? encoder.encode(value)) ?? Data(#"{"error":{"code":"internal","message":"encoding failed"}}"#.utf8)
    }
}

// MARK: - Request bodies

enum AdminRequest {
    /// Largest request body read.
    static let maxBodyBytes = 1 << 20

    /// The body's top-level object.
    static func object(_ bytes: [UInt8]) throws(AdminError) -> (reader: ConfigObject, raw: JSONObject) {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw AdminError(.invalidRequest, "the body is not valid JSON: \(error)")
        }
        guard case .object(let raw) = document else {
            throw AdminError(.invalidRequest, "the body must be a JSON object, got \(document.typeName)")
        }
        return (try wrap { () throws(ConfigError) in try ConfigObject(document, path: "") }, raw)
    }

    /// `POST /v1/admin/consumers`.
    static func consumerDraft(_ bytes: [UInt8]) throws(AdminError) -> ConsumerDraft {
        var (reader, _) = try object(bytes)
        let draft = try wrap { () throws(ConfigError) -> ConsumerDraft in
            let name = try reader.string("name")
            var draft = ConsumerDraft(name: name)
            draft.team = try reader.optionalString("team")
            draft.allowedModels = try reader.optionalStringArray("models")
            draft.expiresAt = try reader.optionalInt("expires_at", in: 0...AdminValidation.maxExpiresAt)
            draft.disabled = try reader.optionalBool("disabled") ?? false
            if var limits = try reader.optionalObject("limits") {
                draft.limits = try QuotaLimits.read(&limits)
                try limits.finish()
            }
            try reader.finish()
            return draft
        }
        try AdminValidation.check(draft)
        return draft
    }

    /// `PATCH /v1/admin/consumers/{name}`: absent fields are kept, `null` clears one.
    static func consumerChanges(_ bytes: [UInt8]) throws(AdminError) -> ConsumerChanges {
        var (reader, raw) = try object(bytes)
        let changes = try wrap { () throws(ConfigError) -> ConsumerChanges in
            var changes = ConsumerChanges()
            if raw["team"] != nil { changes.team = .some(try reader.optionalString("team")) }
            if raw["models"] != nil { changes.allowedModels = .some(try reader.optionalStringArray("models")) }
            if raw["expires_at"] != nil {
                changes.expiresAt = .some(try reader.optionalInt("expires_at", in: 0...AdminValidation.maxExpiresAt))
            }
            changes.disabled = try reader.optionalBool("disabled")
            if raw["limits"] != nil {
                if var limits = try reader.optionalObject("limits") {
                    changes.limits = try QuotaLimits.read(&limits)
                    try limits.finish()
                } else {
                    changes.limits = QuotaLimits()  // null: no limits
                }
            }
            try reader.finish()
            return changes
        }
        try AdminValidation.check(changes)
        return changes
    }

    /// `PUT …/limits`: the whole body is the limits object.
    static func limits(_ bytes: [UInt8]) throws(AdminError) -> QuotaLimits {
        var (reader, _) = try object(bytes)
        let limits = try wrap { () throws(ConfigError) -> QuotaLimits in
            let limits = try QuotaLimits.read(&reader)
            try reader.finish()
            return limits
        }
        try AdminValidation.checkLimits(limits, field: "")
        return limits
    }

    /// `POST /v1/admin/teams`.
    static func teamDraft(_ bytes: [UInt8]) throws(AdminError) -> TeamDraft {
        var (reader, _) = try object(bytes)
        let draft = try wrap { () throws(ConfigError) -> TeamDraft in
            var draft = TeamDraft(name: try reader.string("name"))
            if var limits = try reader.optionalObject("limits") {
                draft.limits = try QuotaLimits.read(&limits)
                try limits.finish()
            }
            try reader.finish()
            return draft
        }
        try AdminValidation.check(draft)
        return draft
    }

    private static func wrap<T>(_ body: () throws(ConfigError) -> T) throws(AdminError) -> T {
        do {
            return try body()
        } catch {
            throw AdminError(.invalidRequest, error.problem, field: error.path.isEmpty ? nil : error.path)
        }
    }
}
