// Usage records on SQLite: a batch is one write transaction of cached prepared inserts (`ON
// CONFLICT DO NOTHING`, the change count telling a new record from a duplicate); the summary and
// the records are read on one WAL snapshot.
import GRDB
public import SluiceCore

extension SQLiteAdminStore {
    public func insertUsage(_ records: [FleetUsageRecord], envoy: String, receivedAtMillis: Int64) async throws
        -> UsageInsertResult
    {
        guard !records.isEmpty else { return UsageInsertResult(inserted: []) }
        let placeholders = Array(repeating: "?", count: AdminSchema.usageColumns.count).joined(separator: ", ")
        let sql = """
            INSERT INTO sluice_usage_records (\(AdminSchema.usageColumnList)) VALUES (\(placeholders))
            ON CONFLICT (id) DO NOTHING
            """
        do {
            let inserted = try await pool.write { db -> [Bool] in
                let statement = try db.cachedStatement(sql: sql)
                var inserted: [Bool] = []
                inserted.reserveCapacity(records.count)
                for record in records {
                    let values: [(any DatabaseValueConvertible)?] = [
                        record.id, envoy, receivedAtMillis, record.timeMillis, record.key, record.team, record.model,
                        record.backend, record.provider, record.status, record.inputTokens, record.cachedInputTokens,
                        record.outputTokens, record.costMicros, record.durationMillis, record.ttftMillis, record.stream,
                        record.unit.rawValue, record.searchUnits,
                    ]
                    try statement.execute(arguments: StatementArguments(values))
                    inserted.append(db.changesCount == 1)
                }
                return inserted
            }
            return UsageInsertResult(inserted: inserted)
        } catch {
            throw AdminError.store("store usage records", error)
        }
    }

    public func usageSummary(_ query: UsageSummaryQuery) async throws -> UsageSummary {
        let columns = query.groupBy.map(\.column)
        var conditions = "time_ms >= ? AND time_ms < ?"
        var arguments: [(any DatabaseValueConvertible)?] = [query.from, query.to]
        if let after = query.after, !columns.isEmpty {
            conditions += " AND " + AdminSchema.keysetAfter(columns: columns, collate: "", placeholder: { _ in "?" })
            arguments += AdminSchema.keysetValues(after) as [(any DatabaseValueConvertible)?]
        }
        let selected = (columns + [AdminSchema.usageSums]).joined(separator: ", ")
        let grouping = columns.isEmpty ? "" : "GROUP BY \(columns.joined(separator: ", ")) ORDER BY \(columns.joined(separator: ", "))"
        let pageSQL = "SELECT \(selected) FROM sluice_usage_records WHERE \(conditions) \(grouping) LIMIT ?"
        arguments.append(query.limit + 1)
        let pageArguments = StatementArguments(arguments)
        let totalsSQL = "SELECT \(AdminSchema.usageSums) FROM sluice_usage_records WHERE time_ms >= ? AND time_ms < ?"
        let totalsArguments: StatementArguments = [query.from, query.to]
        let count = columns.count
        let (rows, totals) = try await read("sum usage records") { db in
            (
                try Row.fetchAll(db, sql: pageSQL, arguments: pageArguments).map { row in
                    UsageGroup(values: (0..<count).map { row[$0] as String }, totals: Self.totals(row, from: count))
                },
                try Row.fetchOne(db, sql: totalsSQL, arguments: totalsArguments).map { Self.totals($0, from: 0) }
                    ?? UsageTotals()
            )
        }
        return UsageSummary.page(rows, totals: totals, query: query)
    }

    public func usageRecords(_ query: UsageRecordQuery) async throws -> UsageRecordPage {
        var conditions = ["time_ms >= ?", "time_ms < ?"]
        var arguments: [(any DatabaseValueConvertible)?] = [query.from, query.to]
        for (column, value) in query.filters {
            conditions.append("\(column) = ?")
            arguments.append(value)
        }
        if let after = query.after {
            conditions.append("(time_ms < ? OR (time_ms = ? AND id < ?))")
            arguments += [after.timeMillis, after.timeMillis, after.id] as [(any DatabaseValueConvertible)?]
        }
        arguments.append(query.limit + 1)
        let sql = """
            SELECT \(AdminSchema.usageColumnList) FROM sluice_usage_records WHERE \(conditions.joined(separator: " AND "))
            ORDER BY time_ms DESC, id DESC LIMIT ?
            """
        let statementArguments = StatementArguments(arguments)
        let records = try await read("read usage records") { db in
            try Row.fetchAll(db, sql: sql, arguments: statementArguments).map(Self.usageRecord)
        }
        return UsageRecordPage.page(records, limit: query.limit)
    }

    public func usageRecordCount() async throws -> Int64 {
        try await read("count usage records") { db in
            try Int64.fetchOne(db, sql: "SELECT COUNT(*) FROM sluice_usage_records") ?? 0
        }
    }

    private static func totals(_ row: Row, from start: Int) -> UsageTotals {
        UsageTotals(
            requests: row[start], errors: row[start + 1], inputTokens: row[start + 2], cachedInputTokens: row[start + 3],
            outputTokens: row[start + 4], costMicroUSD: row[start + 5], searchUnits: row[start + 6],
            images: row[start + 7], speechCharacters: row[start + 8], audioSeconds: row[start + 9])
    }

    private static func usageRecord(_ row: Row) throws -> StoredUsageRecord {
        let unitName: String = row[17]
        guard let unit = UsageUnit(rawValue: unitName) else { throw AdminError.storedUnit(unitName, id: row[0]) }
        return StoredUsageRecord(
            record: FleetUsageRecord(
                id: row[0], timeMillis: row[3], key: row[4], team: row[5], model: row[6], backend: row[7],
                provider: row[8], status: row[9], unit: unit, inputTokens: row[10], cachedInputTokens: row[11],
                outputTokens: row[12], searchUnits: row[18], costMicros: row[13], durationMillis: row[14],
                ttftMillis: row[15], stream: row[16]),
            envoy: row[1], receivedAtMillis: row[2])
    }
}

// MARK: - Paging, shared by both stores

extension UsageSummary {
    /// A page from up to `limit + 1` rows: the extra row only says there is a next page.
    static func page(_ rows: [UsageGroup], totals: UsageTotals, query: UsageSummaryQuery) -> UsageSummary {
        // Without grouping, the one row is all records: none when it counts nothing.
        if query.groupBy.isEmpty {
            return UsageSummary(groups: rows.filter { $0.totals.requests > 0 }.prefix(1).map { $0 }, totals: totals, nextAfter: nil)
        }
        let page = Array(rows.prefix(query.limit))
        return UsageSummary(groups: page, totals: totals, nextAfter: rows.count > query.limit ? page.last?.values : nil)
    }
}

extension UsageRecordPage {
    static func page(_ rows: [StoredUsageRecord], limit: Int) -> UsageRecordPage {
        let page = Array(rows.prefix(limit))
        let next = rows.count > limit ? page.last.map { UsageRecordPosition(timeMillis: $0.record.timeMillis, id: $0.record.id) } : nil
        return UsageRecordPage(records: page, next: next)
    }
}

extension UsageRecordQuery {
    /// The column filters given, as (column, value).
    var filters: [(String, String)] {
        [("consumer", key), ("team", team), ("model", model), ("backend", backend)].compactMap { column, value in
            value.map { (column, $0) }
        }
    }
}
