// Usage records on PostgreSQL: a batch is one multi-row `INSERT … ON CONFLICT (id) DO NOTHING
// RETURNING id` (19 parameters a record, 19,000 for the largest batch, under the protocol's
// 65,535), so a batch costs one round trip; the summary and the records are read in one
// REPEATABLE READ transaction. Text sorts byte-wise (`COLLATE "C"`), as on SQLite, so pages and
// cursors mean the same on both.
import PostgresNIO
public import SluiceCore

extension PostgresAdminStore {
    public func insertUsage(_ records: [FleetUsageRecord], envoy: String, receivedAtMillis: Int64) async throws
        -> UsageInsertResult
    {
        guard !records.isEmpty else { return UsageInsertResult(inserted: []) }
        let width = AdminSchema.usageColumns.count
        var bindings = PostgresBindings(capacity: records.count * width)
        var rows: [String] = []
        rows.reserveCapacity(records.count)
        for (index, record) in records.enumerated() {
            let base = index * width
            rows.append("(" + (1...width).map { "$\(base + $0)" }.joined(separator: ", ") + ")")
            bindings.append(record.id)
            bindings.append(envoy)
            bindings.append(receivedAtMillis)
            bindings.append(record.timeMillis)
            bindings.append(record.key)
            bindings.append(record.team)
            bindings.append(record.model)
            bindings.append(record.backend)
            bindings.append(record.provider)
            bindings.append(Int32(clamping: record.status))
            bindings.append(record.inputTokens)
            bindings.append(record.cachedInputTokens)
            bindings.append(record.outputTokens)
            bindings.append(record.costMicros)
            bindings.append(record.durationMillis)
            bindings.append(record.ttftMillis)
            bindings.append(record.stream)
            bindings.append(record.unit.rawValue)
            bindings.append(record.searchUnits)
        }
        let query = PostgresQuery(
            unsafeSQL: """
                INSERT INTO sluice_usage_records (\(AdminSchema.usageColumnList)) VALUES \(rows.joined(separator: ", "))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """, binds: bindings)
        let stored = try await transaction("store usage records") { connection -> Set<String> in
            var ids = Set<String>()
            for try await id in try await connection.query(query, logger: self.logger).decode(String.self) {
                ids.insert(id)
            }
            return ids
        }
        // Within one statement rows are inserted in order: of several copies of one id in the
        // batch, the first is the one stored.
        var unclaimed = stored
        return UsageInsertResult(inserted: records.map { unclaimed.remove($0.id) != nil })
    }

    public func usageSummary(_ query: UsageSummaryQuery) async throws -> UsageSummary {
        let columns = query.groupBy.map(\.column)
        var bindings = PostgresBindings()
        bindings.append(query.from)
        bindings.append(query.to)
        var conditions = "time_ms >= $1 AND time_ms < $2"
        if let after = query.after, !columns.isEmpty {
            conditions += " AND " + AdminSchema.keysetAfter(columns: columns, collate: #" COLLATE "C""#) { "$\($0 + 3)" }
            for value in AdminSchema.keysetValues(after) { bindings.append(value) }
        }
        bindings.append(query.limit + 1)
        let limitParameter = "$\(bindings.count)"
        let selected = (columns + [AdminSchema.usageSums]).joined(separator: ", ")
        let ordered = columns.map { #"\#($0) COLLATE "C""# }.joined(separator: ", ")
        let grouping = columns.isEmpty ? "" : "GROUP BY \(columns.joined(separator: ", ")) ORDER BY \(ordered)"
        let page = PostgresQuery(
            unsafeSQL: "SELECT \(selected) FROM sluice_usage_records WHERE \(conditions) \(grouping) LIMIT \(limitParameter)",
            binds: bindings)
        var totalsBindings = PostgresBindings()
        totalsBindings.append(query.from)
        totalsBindings.append(query.to)
        let totalsQuery = PostgresQuery(
            unsafeSQL: "SELECT \(AdminSchema.usageSums) FROM sluice_usage_records WHERE time_ms >= $1 AND time_ms < $2",
            binds: totalsBindings)
        let count = columns.count
        let (groups, totals) = try await transaction(
            "sum usage records", begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
        ) { connection in
            var groups: [UsageGroup] = []
            for try await row in try await connection.query(page, logger: self.logger) {
                let cells = row.makeRandomAccess()
                groups.append(
                    UsageGroup(
                        values: try (0..<count).map { try cells[$0].decode(String.self) },
                        totals: try Self.totals(cells, from: count)))
            }
            var totals = UsageTotals()
            for try await row in try await connection.query(totalsQuery, logger: self.logger) {
                totals = try Self.totals(row.makeRandomAccess(), from: 0)
            }
            return (groups, totals)
        }
        return UsageSummary.page(groups, totals: totals, query: query)
    }

    public func usageRecords(_ query: UsageRecordQuery) async throws -> UsageRecordPage {
        var bindings = PostgresBindings()
        bindings.append(query.from)
        bindings.append(query.to)
        var conditions = ["time_ms >= $1", "time_ms < $2"]
        for (column, value) in query.filters {
            bindings.append(value)
            conditions.append("\(column) = $\(bindings.count)")
        }
        if let after = query.after {
            bindings.append(after.timeMillis)
            let time = "$\(bindings.count)"
            bindings.append(after.id)
            conditions.append(#"(time_ms < \#(time) OR (time_ms = \#(time) AND id COLLATE "C" < $\#(bindings.count)))"#)
        }
        bindings.append(query.limit + 1)
        let sql = """
            SELECT \(AdminSchema.usageColumnList) FROM sluice_usage_records WHERE \(conditions.joined(separator: " AND "))
            ORDER BY time_ms DESC, id COLLATE "C" DESC LIMIT $\(bindings.count)
            """
        let statement = PostgresQuery(unsafeSQL: sql, binds: bindings)
        let records = try await transaction("read usage records", begin: nil) { connection in
            var records: [StoredUsageRecord] = []
            for try await row in try await connection.query(statement, logger: self.logger) {
                records.append(try Self.usageRecord(row.makeRandomAccess()))
            }
            return records
        }
        return UsageRecordPage.page(records, limit: query.limit)
    }

    public func usageRecordCount() async throws -> Int64 {
        try await transaction("count usage records", begin: nil) { connection in
            for try await count in try await connection.query(
                "SELECT COUNT(*) FROM sluice_usage_records", logger: self.logger
            ).decode(Int64.self) {
                return count
            }
            return 0
        }
    }

    private static func totals(_ cells: PostgresRandomAccessRow, from start: Int) throws -> UsageTotals {
        UsageTotals(
            requests: try cells[start].decode(Int64.self), errors: try cells[start + 1].decode(Int64.self),
            inputTokens: try cells[start + 2].decode(Int64.self), cachedInputTokens: try cells[start + 3].decode(Int64.self),
            outputTokens: try cells[start + 4].decode(Int64.self), costMicroUSD: try cells[start + 5].decode(Int64.self),
            searchUnits: try cells[start + 6].decode(Int64.self), images: try cells[start + 7].decode(Int64.self),
            speechCharacters: try cells[start + 8].decode(Int64.self), audioSeconds: try cells[start + 9].decode(Int64.self))
    }

    private static func usageRecord(_ cells: PostgresRandomAccessRow) throws -> StoredUsageRecord {
        let id = try cells[0].decode(String.self)
        let unitName = try cells[17].decode(String.self)
        guard let unit = UsageUnit(rawValue: unitName) else { throw AdminError.storedUnit(unitName, id: id) }
        return StoredUsageRecord(
            record: FleetUsageRecord(
                id: id, timeMillis: try cells[3].decode(Int64.self),
                key: try cells[4].decode(String.self), team: try cells[5].decode(String.self),
                model: try cells[6].decode(String.self), backend: try cells[7].decode(String.self),
                provider: try cells[8].decode(String.self), status: Int(try cells[9].decode(Int32.self)),
                unit: unit, inputTokens: try cells[10].decode(Int.self), cachedInputTokens: try cells[11].decode(Int.self),
                outputTokens: try cells[12].decode(Int.self), searchUnits: try cells[18].decode(Int.self),
                costMicros: try cells[13].decode(Int64.self),
                durationMillis: try cells[14].decode(Int64.self), ttftMillis: try cells[15].decode(Int64?.self),
                stream: try cells[16].decode(Bool.self)),
            envoy: try cells[1].decode(String.self), receivedAtMillis: try cells[2].decode(Int64.self))
    }
}
