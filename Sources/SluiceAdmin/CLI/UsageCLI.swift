// `sluiced usage`: the fleet's usage summed from the database, as `GET /v1/admin/usage` sums it
// (the same store queries and parameter rules), every page at once.
//
//     sluiced usage --group-by team --since 24h
//     sluiced usage --group-by key,model --from 2026-12-01T00:00:00Z --to 2026-12-02T00:00:00Z --json
import SluiceCore

/// `sluiced usage`.
public enum UsageCLI {
    /// Sums per group over the range: `since` (`90s`, `30m`, `24h`, `7d`) counts back from `nowMillis`;
    /// otherwise `from`/`to` as the API reads them (Unix milliseconds or RFC 3339).
    /// - Throws: `AdminError.invalidRequest` naming the option (`cliDescription`: `--group-by: …`).
    public static func summary(
        groupBy: String?, since: String?, from: String?, to: String?, store: any AdminStore, nowMillis: Int64,
        format: CLIOutputFormat = .text
    ) async throws -> String {
        var parameters: [(key: Substring, value: Substring)] = []
        if let groupBy { parameters.append(("group_by", Substring(groupBy))) }
        if let to { parameters.append(("to", Substring(to))) }
        if let since {
            guard from == nil else { throw AdminError.invalid("since", "give --since or --from, not both") }
            parameters.append(("from", Substring(String(max(0, nowMillis - (try sinceMillis(since)))))))
        } else if let from {
            parameters.append(("from", Substring(from)))
        }
        let (start, end) = try UsageParameters.range(parameters)
        let dimensions = try UsageParameters.groupBy(parameters)
        var groups: [UsageGroup] = []
        var totals = UsageTotals()
        var after: [String]?
        repeat {
            let page = try await store.usageSummary(
                UsageSummaryQuery(from: start, to: end, groupBy: dimensions, limit: UsageParameters.limitRange.upperBound, after: after))
            groups += page.groups
            totals = page.totals
            after = page.nextAfter
        } while after != nil
        switch format {
        case .json:
            return KeysCLI.text(
                AdminJSON.encode(
                    UsageSummaryJSON(
                        from: start, to: end, groupBy: dimensions.map(\.rawValue),
                        groups: groups.map { UsageRowJSON(dimensions: dimensions, values: $0.values, totals: $0.totals) },
                        totals: UsageRowJSON(dimensions: [], values: [], totals: totals), nextCursor: nil)))
        case .text:
            guard totals.requests > 0 else { return "No usage records in that range.\n" }
            // A column of non-token units only when the range has any, so a chat-only fleet's
            // table stays as narrow as before.
            let units: [(title: String, sum: (UsageTotals) -> Int64)] = [
                ("SEARCH UNITS", \.searchUnits), ("IMAGES", \.images), ("SPEECH CHARS", \.speechCharacters),
                ("AUDIO SECONDS", \.audioSeconds),
            ].filter { $0.sum(totals) > 0 }
            func cells(_ totals: UsageTotals) -> [String] {
                [String(totals.requests), String(totals.errors), String(totals.inputTokens),
                    String(totals.cachedInputTokens), String(totals.outputTokens)]
                    + units.map { String($0.sum(totals)) } + ["$" + Dollars.format(micros: totals.costMicroUSD)]
            }
            let header = dimensions.map { $0.rawValue.uppercased() } + ["REQUESTS", "ERRORS", "INPUT", "CACHED", "OUTPUT"]
                + units.map(\.title) + ["COST"]
            var rows = dimensions.isEmpty ? [] : groups.map { $0.values.map { $0.isEmpty ? "-" : $0 } + cells($0.totals) }
            rows.append((dimensions.isEmpty ? [] : ["total"] + Array(repeating: "", count: dimensions.count - 1)) + cells(totals))
            return KeysCLI.table(header: header, rows: rows)
        }
    }

    /// `90s`, `30m`, `24h`, `7d` in milliseconds (at most ten years back).
    static func sinceMillis(_ text: String) throws(AdminError) -> Int64 {
        let units: [Character: Int64] = ["s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000]
        guard let unit = text.last, let scale = units[unit], let count = Int64(text.dropLast()), count > 0,
            count <= 3_650 * 86_400_000 / scale
        else {
            throw .invalid("since", "must be a positive duration such as 90s, 30m, 24h or 7d (at most 3650d), got '\(text)'")
        }
        return count * scale
    }
}
