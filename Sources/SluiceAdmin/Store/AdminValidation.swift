// The rules every consumer and team written through the admin API or the CLI obeys, in one place:
// the stores call them before writing, the HTTP API before calling the stores.
public import SluiceCore

/// Validation of admin inputs; each failure is an `AdminError.invalidRequest` naming the field.
public enum AdminValidation {
    /// Longest consumer or team name accepted.
    public static let maxNameLength = 128
    /// Most model patterns one consumer may list.
    public static let maxAllowedModels = 1_000
    /// Largest expiry accepted (9999-12-31T23:59:59Z), as the module's config reader bounds it.
    public static let maxExpiresAt: Int64 = 253_402_300_799

    /// A consumer or team name: 1 to 128 characters of `A-Z a-z 0-9 . _ - : @`, starting with a
    /// letter or digit, so it is safe in URLs, metrics labels and access logs.
    public static func checkName(_ name: String, field: String = "name") throws(AdminError) {
        guard !name.isEmpty else { throw .invalid(field, "must not be empty") }
        guard name.utf8.count <= maxNameLength else {
            throw .invalid(field, "must be at most \(maxNameLength) characters")
        }
        guard let first = name.utf8.first, isAlphanumeric(first),
            name.utf8.allSatisfy({ isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_")
                || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "@") })
        else {
            throw .invalid(field, "must start with a letter or digit and hold only letters, digits and . _ - : @")
        }
    }

    /// Model names or prefixes ending in a single `*`, as the config file's `models`.
    public static func checkAllowedModels(_ models: [String], field: String = "models") throws(AdminError) {
        guard models.count <= maxAllowedModels else {
            throw .invalid(field, "must list at most \(maxAllowedModels) models")
        }
        for (index, model) in models.enumerated() {
            guard !model.isEmpty, !model.dropLast().contains("*") else {
                throw .invalid("\(field)[\(index)]", "must be a model name, or a prefix ending in a single '*'")
            }
            guard model.utf8.count <= 256, model.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F })
            else {
                throw .invalid("\(field)[\(index)]", "must be at most 256 characters, without control characters")
            }
        }
    }

    /// An expiry in Unix seconds.
    public static func checkExpiresAt(_ expiresAt: Int64, field: String = "expires_at") throws(AdminError) {
        guard (0...maxExpiresAt).contains(expiresAt) else {
            throw .invalid(field, "must be between 0 and \(maxExpiresAt), got \(expiresAt)")
        }
    }

    /// Limits within the bounds the module accepts (`QuotaLimits.read`).
    public static func checkLimits(_ limits: QuotaLimits, field: String = "limits") throws(AdminError) {
        func path(_ key: String) -> String { field.isEmpty ? key : "\(field).\(key)" }
        func check(_ value: Int64?, _ key: String, _ range: ClosedRange<Int64>) throws(AdminError) {
            guard let value else { return }
            guard range.contains(value) else {
                throw .invalid(path(key), "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
            }
        }
        let tokens: ClosedRange<Int64> = 1...QuotaLimits.maxTokensPerMinute
        try check(limits.requestsPerMinute, "requests_per_minute", 1...QuotaLimits.maxRequestsPerMinute)
        try check(limits.tokensPerMinute, "tokens_per_minute", tokens)
        try check(limits.inputTokensPerMinute, "input_tokens_per_minute", tokens)
        try check(limits.outputTokensPerMinute, "output_tokens_per_minute", tokens)
        let budget = 0...PriceTable.micros(fromDollars: QuotaLimits.maxBudgetUSD)
        for (value, key) in [(limits.budgetMicrosPerDay, "budget_usd_per_day"),
            (limits.budgetMicrosPerMonth, "budget_usd_per_month")]
        {
            guard let value else { continue }
            guard budget.contains(value) else {
                throw .invalid(path(key), "must be between 0 and \(QuotaLimits.maxBudgetUSD) dollars")
            }
        }
    }

    /// A whole consumer draft.
    public static func check(_ draft: ConsumerDraft) throws(AdminError) {
        try checkName(draft.name)
        if let team = draft.team { try checkName(team, field: "team") }
        if let models = draft.allowedModels { try checkAllowedModels(models) }
        if let expiresAt = draft.expiresAt { try checkExpiresAt(expiresAt) }
        try checkLimits(draft.limits)
    }

    /// The fields a change sets.
    public static func check(_ changes: ConsumerChanges) throws(AdminError) {
        if case .some(.some(let team)) = changes.team { try checkName(team, field: "team") }
        if case .some(.some(let models)) = changes.allowedModels { try checkAllowedModels(models) }
        if case .some(.some(let expiresAt)) = changes.expiresAt { try checkExpiresAt(expiresAt) }
        if let limits = changes.limits { try checkLimits(limits) }
    }

    /// A whole team draft.
    public static func check(_ draft: TeamDraft) throws(AdminError) {
        try checkName(draft.name)
        try checkLimits(draft.limits)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }
}
