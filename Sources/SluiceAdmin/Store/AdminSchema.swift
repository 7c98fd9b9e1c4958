// The admin database's schema, shared word for word by SQLite and PostgreSQL: both accept these
// type names (SQLite by affinity), so one list of migrations describes both stores.
//
// Limits are nullable integer columns (null = no limit on that dimension); budgets are kept in
// micro-dollars as the module counts them. `allowed_models` is a JSON array of strings, or null
// for all models. One row of `sluice_version` holds the version every write increments.
import Foundation
import SluiceControl
import SluiceCore

enum AdminSchema {
    struct Migration: Sendable {
        /// Applied in increasing order; never renumber or edit one that has shipped.
        let version: Int
        let name: String
        let statements: [String]
    }

    static let migrations: [Migration] = [
        Migration(
            version: 1, name: "consumers, teams and the version row",
            statements: [
                """
                CREATE TABLE sluice_teams (
                    name TEXT NOT NULL PRIMARY KEY,
                    \(limitColumnsDDL),
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                """
                CREATE TABLE sluice_consumers (
                    name TEXT NOT NULL PRIMARY KEY,
                    key_sha256 TEXT NOT NULL UNIQUE,
                    team TEXT,
                    allowed_models TEXT,
                    expires_at BIGINT,
                    disabled BOOLEAN NOT NULL DEFAULT FALSE,
                    \(limitColumnsDDL),
                    created_at BIGINT NOT NULL,
                    updated_at BIGINT NOT NULL
                )
                """,
                "CREATE INDEX sluice_consumers_team ON sluice_consumers (team)",
                """
                CREATE TABLE sluice_version (
                    id INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
                    version BIGINT NOT NULL
                )
                """,
                "INSERT INTO sluice_version (id, version) VALUES (1, 0)",
            ]),
        Migration(
            version: 2, name: "usage records of every Envoy",
            statements: [
                // One row per finished request, by its x-request-id (a retried batch stores nothing
                // twice). `consumer` is the record's `key` (KEY is an SQL keyword). Usage writes do
                // not touch sluice_version: they change nothing Envoy is served.
                """
                CREATE TABLE sluice_usage_records (
                    id TEXT NOT NULL PRIMARY KEY,
                    envoy TEXT NOT NULL,
                    received_at_ms BIGINT NOT NULL,
                    time_ms BIGINT NOT NULL,
                    consumer TEXT NOT NULL,
                    team TEXT NOT NULL,
                    model TEXT NOT NULL,
                    backend TEXT NOT NULL,
                    provider TEXT NOT NULL,
                    status INTEGER NOT NULL,
                    input_tokens BIGINT NOT NULL,
                    cached_input_tokens BIGINT NOT NULL,
                    output_tokens BIGINT NOT NULL,
                    cost_micro_usd BIGINT NOT NULL,
                    duration_ms BIGINT NOT NULL,
                    ttft_ms BIGINT,
                    stream BOOLEAN NOT NULL
                )
                """,
                // Time ranges (the summary, and the records newest first with keyset paging), and
                // the records' filters, each within a time range.
                "CREATE INDEX sluice_usage_records_time ON sluice_usage_records (time_ms, id)",
                "CREATE INDEX sluice_usage_records_consumer ON sluice_usage_records (consumer, time_ms)",
                "CREATE INDEX sluice_usage_records_team ON sluice_usage_records (team, time_ms)",
                "CREATE INDEX sluice_usage_records_model ON sluice_usage_records (model, time_ms)",
                "CREATE INDEX sluice_usage_records_backend ON sluice_usage_records (backend, time_ms)",
            ]),
        Migration(
            version: 3, name: "lease accounts",
            statements: [
                // The lease ledger's account per leased quantity and window, written after each
                // lease request so a restarted sluiced knows what each open window consumed and
                // what Envoys still hold (FleetLeases.md). Not a config change: no version bump.
                """
                CREATE TABLE sluice_lease_accounts (
                    scope TEXT NOT NULL,
                    name TEXT NOT NULL,
                    dimension TEXT NOT NULL,
                    window_id BIGINT NOT NULL,
                    limit_units BIGINT NOT NULL,
                    consumed BIGINT NOT NULL,
                    outstanding BIGINT NOT NULL,
                    window_end_ms BIGINT NOT NULL,
                    updated_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (scope, name, dimension, window_id)
                )
                """,
                "CREATE INDEX sluice_lease_accounts_end ON sluice_lease_accounts (window_end_ms)",
            ]),
        Migration(
            version: 4, name: "shared lease ledger",
            statements: [
                // With PostgreSQL the ledger is the database's, shared by every sluiced replica
                // (PostgresLeaseLedger): each holder's slice of an account, and each holder's last
                // request number so a request resent to another replica is still a replay.
                // SQLite keeps the ledger in one process and leaves these empty.
                """
                CREATE TABLE sluice_lease_slices (
                    scope TEXT NOT NULL,
                    name TEXT NOT NULL,
                    dimension TEXT NOT NULL,
                    window_id BIGINT NOT NULL,
                    envoy TEXT NOT NULL,
                    boot TEXT NOT NULL,
                    held BIGINT NOT NULL,
                    expires_at_ms BIGINT NOT NULL,
                    last_ask_ms BIGINT NOT NULL,
                    window_end_ms BIGINT NOT NULL,
                    PRIMARY KEY (scope, name, dimension, window_id, envoy, boot)
                )
                """,
                "CREATE INDEX sluice_lease_slices_end ON sluice_lease_slices (window_end_ms)",
                """
                CREATE TABLE sluice_lease_holders (
                    envoy TEXT NOT NULL,
                    boot TEXT NOT NULL,
                    last_seq BIGINT NOT NULL,
                    seen_at_ms BIGINT NOT NULL,
                    PRIMARY KEY (envoy, boot)
                )
                """,
            ]),
        Migration(
            version: 5, name: "usage units and search units",
            statements: [
                // What a record's counts count (tokens, or a media model's characters, seconds or
                // images) and the search units a rerank backend billed. Records stored before
                // were all read as tokens with no search units, which the defaults say.
                "ALTER TABLE sluice_usage_records ADD COLUMN unit TEXT NOT NULL DEFAULT 'tokens'",
                "ALTER TABLE sluice_usage_records ADD COLUMN search_units BIGINT NOT NULL DEFAULT 0",
            ]),
    ]

    /// The columns of a usage record, in `insertUsage`'s and `usageRow`'s order.
    static let usageColumns = [
        "id", "envoy", "received_at_ms", "time_ms", "consumer", "team", "model", "backend", "provider", "status",
        "input_tokens", "cached_input_tokens", "output_tokens", "cost_micro_usd", "duration_ms", "ttft_ms", "stream",
        "unit", "search_units",
    ]
    static var usageColumnList: String { usageColumns.joined(separator: ", ") }

    /// The sums of the usage summary, in `UsageTotals` order. Token sums count token-metered
    /// records only; a media record's counts go to the sum of its unit (images are in
    /// `output_tokens`, speech characters and audio seconds in `input_tokens`).
    /// (CAST: PostgreSQL sums BIGINTs as NUMERIC; COALESCE: a sum over no rows is NULL.)
    static let usageSums = [
        "CASE WHEN status >= 400 THEN 1 ELSE 0 END", "CASE WHEN unit = 'tokens' THEN input_tokens ELSE 0 END",
        "CASE WHEN unit = 'tokens' THEN cached_input_tokens ELSE 0 END",
        "CASE WHEN unit = 'tokens' THEN output_tokens ELSE 0 END", "cost_micro_usd", "search_units",
        "CASE WHEN unit = 'images' THEN output_tokens ELSE 0 END",
        "CASE WHEN unit = 'characters' THEN input_tokens ELSE 0 END",
        "CASE WHEN unit = 'seconds' THEN input_tokens ELSE 0 END",
    ].reduce("COUNT(*)") { $0 + ", COALESCE(CAST(SUM(\($1)) AS BIGINT), 0)" }

    /// The keyset condition "the group is after `values`" over `columns` (compared with `collate`),
    /// spelt out as `(a > ?) OR (a = ? AND b > ?) …` so both databases read it the same way;
    /// `placeholder(i)` writes the i-th value's parameter. Parameters are numbered in the order
    /// `keysetValues` lists them.
    static func keysetAfter(columns: [String], collate: String, placeholder: (Int) -> String) -> String {
        var index = 0
        var alternatives: [String] = []
        for last in columns.indices {
            var terms: [String] = []
            for position in 0...last {
                terms.append("\(columns[position])\(collate) \(position == last ? ">" : "=") \(placeholder(index))")
                index += 1
            }
            alternatives.append("(" + terms.joined(separator: " AND ") + ")")
        }
        return "(" + alternatives.joined(separator: " OR ") + ")"
    }

    /// The values `keysetAfter` binds, in its parameter order.
    static func keysetValues(_ values: [String]) -> [String] {
        values.indices.flatMap { last in values[0...last] }
    }

    static func nowMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    /// The limit columns, in `QuotaLimits` order.
    static let limitColumns = [
        "requests_per_minute", "tokens_per_minute", "input_tokens_per_minute", "output_tokens_per_minute",
        "budget_micros_per_day", "budget_micros_per_month",
    ]
    private static var limitColumnsDDL: String { limitColumns.map { "\($0) BIGINT" }.joined(separator: ",\n    ") }

    /// The columns a consumer row is read from, in `ConsumerRow` order.
    static let consumerColumns =
        (["name", "key_sha256", "team", "allowed_models", "expires_at", "disabled"] + limitColumns).joined(separator: ", ")
    /// The columns a team row is read from, in `TeamRow` order.
    static let teamColumns = (["name"] + limitColumns).joined(separator: ", ")

    // MARK: - Encodings

    /// `allowed_models` as stored: a JSON array, or nil.
    static func encodeModels(_ models: [String]?) -> String? {
        guard let models else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(models) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    static func decodeModels(_ text: String?, consumer: String) throws(AdminError) -> [String]? {
        guard let text else { return nil }
        do {
            return try JSONDecoder().decode([String].self, from: Data(text.utf8))
        } catch {
            throw AdminError(.storeFailure, "consumer '\(consumer)': allowed_models in the database is not a JSON array of strings")
        }
    }

    static func limitValues(_ limits: QuotaLimits) -> [Int64?] {
        [
            limits.requestsPerMinute, limits.tokensPerMinute, limits.inputTokensPerMinute, limits.outputTokensPerMinute,
            limits.budgetMicrosPerDay, limits.budgetMicrosPerMonth,
        ]
    }

    static func limits(_ values: [Int64?]) -> QuotaLimits {
        QuotaLimits(
            requestsPerMinute: values[0], tokensPerMinute: values[1], inputTokensPerMinute: values[2],
            outputTokensPerMinute: values[3], budgetMicrosPerDay: values[4], budgetMicrosPerMonth: values[5])
    }

    static func now() -> Int64 { Int64(Date().timeIntervalSince1970) }
}

/// A consumer row as both stores read it.
struct ConsumerRow {
    var name: String
    var keySHA256: String
    var team: String?
    var allowedModels: String?
    var expiresAt: Int64?
    var disabled: Bool
    var limits: [Int64?]

    func spec() throws(AdminError) -> ConsumerSpec {
        guard let digest = SHA256Digest(hex: keySHA256) else {
            throw AdminError(.storeFailure, "consumer '\(name)': key_sha256 in the database is not 64 hex digits")
        }
        return ConsumerSpec(
            name: name, keySHA256: digest, team: team, allowedModels: try AdminSchema.decodeModels(allowedModels, consumer: name),
            expiresAt: expiresAt, disabled: disabled, limits: AdminSchema.limits(limits), source: .database)
    }
}
