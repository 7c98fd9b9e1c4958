// Where the lease ledger's accounts survive a restart of sluiced: one row per leased quantity and
// window (limit, consumed, outstanding), upserted after each lease request. `consumed` only grows
// within a window, so a late write of an older snapshot never lowers it (MAX on SQLite, GREATEST
// on PostgreSQL); `outstanding` is the last snapshot written.
import GRDB
import PostgresNIO
public import SluiceCore

/// A lease account as stored.
public struct LeaseAccountRow: Sendable, Equatable {
    public var key: LeaseKey
    public var window: Int64
    public var limit: Int64
    public var consumed: Int64
    public var outstanding: Int64
    public var windowEndMillis: Int64

    public init(key: LeaseKey, window: Int64, limit: Int64, consumed: Int64, outstanding: Int64, windowEndMillis: Int64) {
        self.key = key
        self.window = window
        self.limit = limit
        self.consumed = consumed
        self.outstanding = outstanding
        self.windowEndMillis = windowEndMillis
    }
}

public protocol LeaseAccountStore: Sendable {
    /// Upserts `rows` in one transaction and forgets accounts whose window ended a day ago.
    func saveLeaseAccounts(_ rows: [LeaseAccountRow], nowMillis: Int64) async throws
    /// The accounts of windows that end after `millis`.
    func leaseAccounts(endingAfter millis: Int64) async throws -> [LeaseAccountRow]
}

enum LeaseAccountSQL {
    static let columns = "scope, name, dimension, window_id, limit_units, consumed, outstanding, window_end_ms, updated_at_ms"

    static func row(scope: String, name: String, dimension: String, values: [Int64]) -> LeaseAccountRow? {
        guard let kind = QuotaScope.Kind(leaseWireName: scope), let dimension = LeaseDimension(rawValue: dimension),
            values.count == 5
        else { return nil }
        return LeaseAccountRow(
            key: LeaseKey(QuotaScope(kind, name), dimension), window: values[0], limit: values[1], consumed: values[2],
            outstanding: values[3], windowEndMillis: values[4])
    }
}

extension SQLiteAdminStore {
    public func saveLeaseAccounts(_ rows: [LeaseAccountRow], nowMillis: Int64) async throws {
        let sql = """
            INSERT INTO sluice_lease_accounts (\(LeaseAccountSQL.columns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (scope, name, dimension, window_id) DO UPDATE SET
                limit_units = excluded.limit_units,
                consumed = MAX(sluice_lease_accounts.consumed, excluded.consumed),
                outstanding = excluded.outstanding,
                window_end_ms = excluded.window_end_ms,
                updated_at_ms = excluded.updated_at_ms
            """
        do {
            try await pool.write { db in
                let statement = try db.cachedStatement(sql: sql)
                for row in rows {
                    try statement.execute(arguments: [
                        row.key.scope.kind.leaseWireName, row.key.scope.name, row.key.dimension.rawValue, row.window, row.limit,
                        row.consumed, row.outstanding, row.windowEndMillis, nowMillis,
                    ])
                }
                try db.execute(
                    sql: "DELETE FROM sluice_lease_accounts WHERE window_end_ms < ?",
                    arguments: [nowMillis - UTCCalendar.millisPerDay])
            }
        } catch {
            throw AdminError.store("store lease accounts", error)
        }
    }

    public func leaseAccounts(endingAfter millis: Int64) async throws -> [LeaseAccountRow] {
        try await read("read lease accounts") { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT scope, name, dimension, window_id, limit_units, consumed, outstanding, window_end_ms
                    FROM sluice_lease_accounts WHERE window_end_ms > ?
                    """, arguments: [millis]
            ).compactMap { row in
                LeaseAccountSQL.row(
                    scope: row[0], name: row[1], dimension: row[2], values: (3..<8).map { row[$0] as Int64 })
            }
        }
    }
}

extension PostgresAdminStore {
    public func saveLeaseAccounts(_ rows: [LeaseAccountRow], nowMillis: Int64) async throws {
        guard !rows.isEmpty else { return }
        var bindings = PostgresBindings(capacity: rows.count * 9)
        var tuples: [String] = []
        for (index, row) in rows.enumerated() {
            let base = index * 9
            tuples.append("(" + (1...9).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            bindings.append(row.key.scope.kind.leaseWireName)
            bindings.append(row.key.scope.name)
            bindings.append(row.key.dimension.rawValue)
            bindings.append(row.window)
            bindings.append(row.limit)
            bindings.append(row.consumed)
            bindings.append(row.outstanding)
            bindings.append(row.windowEndMillis)
            bindings.append(nowMillis)
        }
        let upsert = PostgresQuery(
            unsafeSQL: """
                INSERT INTO sluice_lease_accounts (\(LeaseAccountSQL.columns)) VALUES \(tuples.joined(separator: ", "))
                ON CONFLICT (scope, name, dimension, window_id) DO UPDATE SET
                    limit_units = excluded.limit_units,
                    consumed = GREATEST(sluice_lease_accounts.consumed, excluded.consumed),
                    outstanding = excluded.outstanding,
                    window_end_ms = excluded.window_end_ms,
                    updated_at_ms = excluded.updated_at_ms
                """, binds: bindings)
        var cleanupBindings = PostgresBindings()
        cleanupBindings.append(nowMillis - UTCCalendar.millisPerDay)
        let cleanup = PostgresQuery(unsafeSQL: "DELETE FROM sluice_lease_accounts WHERE window_end_ms < $1", binds: cleanupBindings)
        try await transaction("store lease accounts") { connection in
            try await connection.query(upsert, logger: self.logger)
            try await connection.query(cleanup, logger: self.logger)
        }
    }

    public func leaseAccounts(endingAfter millis: Int64) async throws -> [LeaseAccountRow] {
        var bindings = PostgresBindings()
        bindings.append(millis)
        let query = PostgresQuery(
            unsafeSQL: """
                SELECT scope, name, dimension, window_id, limit_units, consumed, outstanding, window_end_ms
                FROM sluice_lease_accounts WHERE window_end_ms > $1
                """, binds: bindings)
        return try await accountRows(query, action: "read lease accounts")
    }

    /// Runs `query`, whose columns are (scope, name, dimension, window, limit, consumed,
    /// outstanding, window end), and keeps the rows `LeaseAccountSQL.row` accepts.
    func accountRows(_ query: PostgresQuery, action: String) async throws -> [LeaseAccountRow] {
        try await transaction(action, begin: nil) { connection in
            var rows: [LeaseAccountRow] = []
            for try await (scope, name, dimension, window, limit, consumed, outstanding, end) in try await connection
                .query(query, logger: self.logger).decode((String, String, String, Int64, Int64, Int64, Int64, Int64).self)
            {
                if let row = LeaseAccountSQL.row(
                    scope: scope, name: name, dimension: dimension, values: [window, limit, consumed, outstanding, end])
                {
                    rows.append(row)
                }
            }
            return rows
        }
    }
}
