// The logic of `sluiced keys …` and `sluiced teams …`, as functions the daemon's ArgumentParser
// commands call with a store (`AdminStores.open(database:)`: the SQLite file or the PostgreSQL
// database sluiced uses; sluiced sees the change within one poll of its change stream).
//
//     sluiced keys create --team research --budget-usd-per-day 20
//     sluiced keys list [--team research] [--json]
//     sluiced keys revoke NAME        (disable; `keys enable NAME` undoes it)
//     sluiced keys rotate NAME
//     sluiced keys delete NAME
//
// Each returns the text to print on stdout; errors are `AdminError`s whose `cliDescription`
// names the command-line flag (`--budget-usd-per-day: must be between 0 and 1000000.0 dollars`).
import Foundation
public import SluiceCore
import SluiceControl

/// Options of `keys create` (and the limit flags of `teams create` / `teams set-limits`).
public struct KeyCreateOptions: Sendable, Equatable {
    /// The consumer's name; nil generates `key-` and 8 hex digits.
    public var name: String?
    public var team: String?
    /// Model names or `prefix*`; nil = all.
    public var models: [String]?
    /// Unix seconds.
    public var expiresAt: Int64?
    public var disabled: Bool
    public var limits: LimitOptions

    public init(
        name: String? = nil, team: String? = nil, models: [String]? = nil, expiresAt: Int64? = nil, disabled: Bool = false,
        limits: LimitOptions = LimitOptions()
    ) {
        self.name = name
        self.team = team
        self.models = models
        self.expiresAt = expiresAt
        self.disabled = disabled
        self.limits = limits
    }
}

/// The limit flags, budgets in dollars as typed.
public struct LimitOptions: Sendable, Equatable {
    public var requestsPerMinute: Int64?
    public var tokensPerMinute: Int64?
    public var inputTokensPerMinute: Int64?
    public var outputTokensPerMinute: Int64?
    public var budgetUSDPerDay: Double?
    public var budgetUSDPerMonth: Double?

    public init(
        requestsPerMinute: Int64? = nil, tokensPerMinute: Int64? = nil, inputTokensPerMinute: Int64? = nil,
        outputTokensPerMinute: Int64? = nil, budgetUSDPerDay: Double? = nil, budgetUSDPerMonth: Double? = nil
    ) {
        self.requestsPerMinute = requestsPerMinute
        self.tokensPerMinute = tokensPerMinute
        self.inputTokensPerMinute = inputTokensPerMinute
        self.outputTokensPerMinute = outputTokensPerMinute
        self.budgetUSDPerDay = budgetUSDPerDay
        self.budgetUSDPerMonth = budgetUSDPerMonth
    }

    /// The limits, validated. - Throws: `AdminError.invalidRequest` naming `limits.<field>`.
    public func quotaLimits() throws(AdminError) -> QuotaLimits {
        func micros(_ dollars: Double?, _ key: String) throws(AdminError) -> Int64? {
            guard let dollars else { return nil }
            guard dollars.isFinite, (0...QuotaLimits.maxBudgetUSD).contains(dollars) else {
                throw .invalid("limits.\(key)", "must be between 0 and \(QuotaLimits.maxBudgetUSD) dollars")
            }
            return PriceTable.micros(fromDollars: dollars)
        }
        let limits = QuotaLimits(
            requestsPerMinute: requestsPerMinute, tokensPerMinute: tokensPerMinute, inputTokensPerMinute: inputTokensPerMinute,
            outputTokensPerMinute: outputTokensPerMinute, budgetMicrosPerDay: try micros(budgetUSDPerDay, "budget_usd_per_day"),
            budgetMicrosPerMonth: try micros(budgetUSDPerMonth, "budget_usd_per_month"))
        try AdminValidation.checkLimits(limits)
        return limits
    }
}

/// How a command prints.
public enum CLIOutputFormat: String, Sendable, CaseIterable {
    /// Aligned `field: value` lines and tables, for people.
    case text
    /// The admin API's JSON bodies, for scripts.
    case json
}

/// `sluiced keys …`.
public enum KeysCLI {
    /// Creates a consumer and prints its key (shown this once).
    public static func create(
        _ options: KeyCreateOptions, store: any AdminStore, format: CLIOutputFormat = .text
    ) async throws -> String {
        let draft = ConsumerDraft(
            name: options.name ?? generatedName(), team: options.team, allowedModels: options.models,
            expiresAt: options.expiresAt, disabled: options.disabled, limits: try options.limits.quotaLimits())
        let issued = try await store.createConsumer(draft)
        return render(issued, format: format)
    }

    /// Lists the database's consumers (optionally of one team); keys are never shown.
    public static func list(team: String? = nil, store: any AdminStore, format: CLIOutputFormat = .text) async throws -> String {
        let consumers = try await store.consumers().filter { team == nil || $0.team == team }
        switch format {
        case .json:
            return text(AdminJSON.encode(ConsumerListJSON(consumers: consumers.map { ConsumerJSON($0) })))
        case .text:
            guard !consumers.isEmpty else { return "No consumers in the database.\n" }
            let rows = consumers.map { consumer in
                [
                    consumer.name, consumer.team ?? "-", consumer.disabled ? "disabled" : status(expiresAt: consumer.expiresAt),
                    consumer.allowedModels?.joined(separator: ",") ?? "*", describe(consumer.limits),
                    String(consumer.keySHA256.hex.prefix(12)),
                ]
            }
            return table(header: ["NAME", "TEAM", "STATUS", "MODELS", "LIMITS", "KEY SHA-256"], rows: rows)
        }
    }

    /// Disables the consumer's key (the gateway answers 401 `api_key_revoked`); `enable` undoes it.
    public static func revoke(_ name: String, store: any AdminStore, format: CLIOutputFormat = .text) async throws -> String {
        let consumer = try await store.setDisabled(true, consumer: name)
        return format == .json ? text(AdminJSON.encode(ConsumerJSON(consumer))) : "Revoked (disabled) \(name).\n"
    }

    /// Re-enables a revoked key.
    public static func enable(_ name: String, store: any AdminStore, format: CLIOutputFormat = .text) async throws -> String {
        let consumer = try await store.setDisabled(false, consumer: name)
        return format == .json ? text(AdminJSON.encode(ConsumerJSON(consumer))) : "Enabled \(name).\n"
    }

    /// Gives the consumer a new key (shown this once); the old one stops working.
    public static func rotate(_ name: String, store: any AdminStore, format: CLIOutputFormat = .text) async throws -> String {
        render(try await store.rotateKey(ofConsumer: name), format: format)
    }

    /// Deletes the consumer.
    public static func delete(_ name: String, store: any AdminStore) async throws -> String {
        try await store.deleteConsumer(named: name)
        return "Deleted \(name).\n"
    }

    /// `key-` and 8 random hex digits.
    public static func generatedName() -> String {
        var generator = SystemRandomNumberGenerator()
        let value = UInt32.random(in: .min ... .max, using: &generator)
        let hex = String(value, radix: 16)
        return "key-" + String(repeating: "0", count: 8 - hex.count) + hex
    }

    // MARK: - Rendering

    static func render(_ issued: IssuedKey, format: CLIOutputFormat) -> String {
        switch format {
        case .json:
            return text(AdminJSON.encode(IssuedKeyJSON(consumer: ConsumerJSON(issued.consumer), key: issued.secret)))
        case .text:
            let consumer = issued.consumer
            var lines = [("name", consumer.name)]
            if let team = consumer.team { lines.append(("team", team)) }
            if let models = consumer.allowedModels { lines.append(("models", models.joined(separator: ","))) }
            if let expiresAt = consumer.expiresAt { lines.append(("expires", iso8601(expiresAt))) }
            if consumer.disabled { lines.append(("status", "disabled")) }
            if !consumer.limits.isEmpty { lines.append(("limits", describe(consumer.limits))) }
            lines.append(("key", issued.secret))
            let width = lines.map(\.0.count).max() ?? 0
            let body = lines.map { $0.0 + ":" + String(repeating: " ", count: width - $0.0.count + 1) + $0.1 }
            return body.joined(separator: "\n") + "\n\nStore the key now: only its SHA-256 is kept, and it is not shown again.\n"
        }
    }

    static func describe(_ limits: QuotaLimits) -> String {
        var parts: [String] = []
        if let value = limits.requestsPerMinute { parts.append("rpm=\(value)") }
        if let value = limits.tokensPerMinute { parts.append("tpm=\(value)") }
        if let value = limits.inputTokensPerMinute { parts.append("input_tpm=\(value)") }
        if let value = limits.outputTokensPerMinute { parts.append("output_tpm=\(value)") }
        if let value = limits.budgetMicrosPerDay { parts.append("$\(dollars(value))/day") }
        if let value = limits.budgetMicrosPerMonth { parts.append("$\(dollars(value))/month") }
        return parts.isEmpty ? "-" : parts.joined(separator: " ")
    }

    static func dollars(_ micros: Int64) -> String {
        let cents = (micros + 5_000) / 10_000
        let fraction = cents % 100
        return "\(cents / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    static func status(expiresAt: Int64?) -> String {
        guard let expiresAt else { return "active" }
        return Int64(Date().timeIntervalSince1970) >= expiresAt ? "expired" : "active"
    }

    static func iso8601(_ seconds: Int64) -> String {
        ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    static func table(header: [String], rows: [[String]]) -> String {
        let all = [header] + rows
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    static func text(_ data: Data) -> String { String(decoding: data, as: UTF8.self) + "\n" }
}

/// `sluiced teams …`.
public enum TeamsCLI {
    /// Creates a team with its limits and budgets.
    public static func create(
        _ name: String, limits: LimitOptions, store: any AdminStore, format: CLIOutputFormat = .text
    ) async throws -> String {
        let team = try await store.createTeam(TeamDraft(name: name, limits: try limits.quotaLimits()))
        return format == .json ? KeysCLI.text(AdminJSON.encode(TeamJSON(team))) : "Created team \(name) (\(KeysCLI.describe(team.limits))).\n"
    }

    /// Replaces a team's limits and budgets.
    public static func setLimits(
        _ name: String, limits: LimitOptions, store: any AdminStore, format: CLIOutputFormat = .text
    ) async throws -> String {
        let team = try await store.setTeamLimits(named: name, try limits.quotaLimits())
        return format == .json ? KeysCLI.text(AdminJSON.encode(TeamJSON(team))) : "Team \(name): \(KeysCLI.describe(team.limits)).\n"
    }

    /// Lists the database's teams.
    public static func list(store: any AdminStore, format: CLIOutputFormat = .text) async throws -> String {
        let teams = try await store.teams()
        switch format {
        case .json:
            return KeysCLI.text(AdminJSON.encode(TeamListJSON(teams: teams.map { TeamJSON($0) })))
        case .text:
            guard !teams.isEmpty else { return "No teams in the database.\n" }
            return KeysCLI.table(header: ["NAME", "LIMITS"], rows: teams.map { [$0.name, KeysCLI.describe($0.limits)] })
        }
    }

    /// Deletes a team (its consumers keep the team name).
    public static func delete(_ name: String, store: any AdminStore) async throws -> String {
        try await store.deleteTeam(named: name)
        return "Deleted team \(name).\n"
    }
}

extension AdminError {
    /// The error as a command line reports it: a request field becomes its flag
    /// (`limits.budget_usd_per_day` → `--budget-usd-per-day`, `models[1]` → `--models`).
    public var cliDescription: String {
        guard var field else { return message }
        if field.hasPrefix("limits.") { field.removeFirst("limits.".count) }
        if let bracket = field.firstIndex(of: "[") { field = String(field[..<bracket]) }
        return "--\(field.replacingOccurrences(of: "_", with: "-")): \(message)"
    }
}
