// What the usage API asks the stores: sums over a time range grouped by any of key, team, model,
// backend and provider, and the raw records newest first. Both page by keyset (the last row's
// sort key), so a page never repeats or skips a row while records keep arriving, and a cursor is
// opaque to clients: base64url of a small JSON array the API wrote and checks on the way back.
import Foundation
public import SluiceCore

/// A column the usage summary can group by.
public enum UsageDimension: String, Sendable, CaseIterable, Comparable {
    case key, team, model, backend, provider

    /// The column in `sluice_usage_records` (`key` is a keyword in SQL, so the column is `consumer`).
    var column: String { self == .key ? "consumer" : rawValue }

    /// The canonical order (the order of the cases): groups are sorted by the dimensions in this order.
    private var rank: Int {
        switch self {
        case .key: 0
        case .team: 1
        case .model: 2
        case .backend: 3
        case .provider: 4
        }
    }

    public static func < (lhs: UsageDimension, rhs: UsageDimension) -> Bool { lhs.rank < rhs.rank }
}

/// Sums over a set of records.
public struct UsageTotals: Sendable, Equatable {
    public var requests: Int64 = 0
    /// Records whose status is 400 or more.
    public var errors: Int64 = 0
    /// Tokens of token-metered records.
    public var inputTokens: Int64 = 0
    public var cachedInputTokens: Int64 = 0
    public var outputTokens: Int64 = 0
    public var costMicroUSD: Int64 = 0
    /// Search units rerank backends billed.
    public var searchUnits: Int64 = 0
    /// Images generated (records metered in images).
    public var images: Int64 = 0
    /// Characters of speech synthesised (records metered in characters).
    public var speechCharacters: Int64 = 0
    /// Seconds of audio transcribed or translated (records metered in seconds).
    public var audioSeconds: Int64 = 0

    public init(
        requests: Int64 = 0, errors: Int64 = 0, inputTokens: Int64 = 0, cachedInputTokens: Int64 = 0,
        outputTokens: Int64 = 0, costMicroUSD: Int64 = 0, searchUnits: Int64 = 0, images: Int64 = 0,
        speechCharacters: Int64 = 0, audioSeconds: Int64 = 0
    ) {
        self.requests = requests
        self.errors = errors
        self.inputTokens = inputTokens
        self.cachedInputTokens = cachedInputTokens
        self.outputTokens = outputTokens
        self.costMicroUSD = costMicroUSD
        self.searchUnits = searchUnits
        self.images = images
        self.speechCharacters = speechCharacters
        self.audioSeconds = audioSeconds
    }
}

/// `GET /v1/admin/usage`: sums per group over `[from, to)`.
public struct UsageSummaryQuery: Sendable, Equatable {
    /// Unix milliseconds, inclusive.
    public var from: Int64
    /// Unix milliseconds, exclusive.
    public var to: Int64
    /// Sorted in `UsageDimension` order, without repeats; empty: one group of everything.
    public var groupBy: [UsageDimension]
    public var limit: Int
    /// The group values of the last row of the previous page.
    public var after: [String]?

    public init(from: Int64, to: Int64, groupBy: [UsageDimension], limit: Int = 100, after: [String]? = nil) {
        self.from = from
        self.to = to
        self.groupBy = Array(Set(groupBy)).sorted()
        self.limit = limit
        self.after = after
    }
}

/// One group of the summary.
public struct UsageGroup: Sendable, Equatable {
    /// The group's values, in the query's `groupBy` order.
    public var values: [String]
    public var totals: UsageTotals

    public init(values: [String], totals: UsageTotals) {
        self.values = values
        self.totals = totals
    }
}

/// A page of the summary.
public struct UsageSummary: Sendable, Equatable {
    public var groups: [UsageGroup]
    /// Over the whole range, not only this page.
    public var totals: UsageTotals
    /// Pass as `after` for the next page; nil on the last page.
    public var nextAfter: [String]?

    public init(groups: [UsageGroup], totals: UsageTotals, nextAfter: [String]?) {
        self.groups = groups
        self.totals = totals
        self.nextAfter = nextAfter
    }
}

/// `GET /v1/admin/usage/records`: raw records in `[from, to)`, newest first.
public struct UsageRecordQuery: Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public var key: String?
    public var team: String?
    public var model: String?
    public var backend: String?
    public var limit: Int
    /// `(time_ms, id)` of the last record of the previous page.
    public var after: UsageRecordPosition?

    public init(
        from: Int64, to: Int64, key: String? = nil, team: String? = nil, model: String? = nil, backend: String? = nil,
        limit: Int = 100, after: UsageRecordPosition? = nil
    ) {
        self.from = from
        self.to = to
        self.key = key
        self.team = team
        self.model = model
        self.backend = backend
        self.limit = limit
        self.after = after
    }
}

/// Where a page of records ended: records sort by `time_ms` then `id`, both descending.
public struct UsageRecordPosition: Sendable, Equatable {
    public var timeMillis: Int64
    public var id: String

    public init(timeMillis: Int64, id: String) {
        self.timeMillis = timeMillis
        self.id = id
    }
}

/// A page of records.
public struct UsageRecordPage: Sendable, Equatable {
    public var records: [StoredUsageRecord]
    public var next: UsageRecordPosition?

    public init(records: [StoredUsageRecord], next: UsageRecordPosition?) {
        self.records = records
        self.next = next
    }
}

/// What a usage batch did to the store.
public struct UsageInsertResult: Sendable, Equatable {
    /// For each record given, in order: true when it was stored now, false when a record of its id
    /// was already stored (earlier, or earlier in the same batch).
    public var inserted: [Bool]

    public init(inserted: [Bool]) { self.inserted = inserted }

    public var accepted: Int { inserted.count { $0 } }
    public var duplicates: Int { inserted.count { !$0 } }
}

/// The usage records' persistence; both admin stores implement it.
public protocol UsageStore: Sendable {
    /// Stores `records` in one transaction, each at most once by id (`ON CONFLICT DO NOTHING`).
    func insertUsage(_ records: [FleetUsageRecord], envoy: String, receivedAtMillis: Int64) async throws -> UsageInsertResult
    /// Sums per group, ordered by the group values (byte order), a page at a time.
    func usageSummary(_ query: UsageSummaryQuery) async throws -> UsageSummary
    /// Records newest first (`time_ms`, then `id`, descending), a page at a time.
    func usageRecords(_ query: UsageRecordQuery) async throws -> UsageRecordPage
    /// How many records are stored (for tests and diagnostics).
    func usageRecordCount() async throws -> Int64
}

// MARK: - Query parameters

/// Reading the usage API's query parameters, with a precise 400 for each bad one.
enum UsageParameters {
    static let defaultLimit = 100
    static let limitRange = 1...1_000

    /// `from` / `to`: Unix milliseconds, or an RFC 3339 time (`2026-12-05T13:00:00Z`, fractions allowed).
    static func time(_ value: Substring?, field: String, default fallback: Int64) throws(AdminError) -> Int64 {
        guard let value else { return fallback }
        if !value.isEmpty, value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }) {
            guard let millis = Int64(value), FleetProtocol.timeRange.contains(millis) else {
                throw .invalid(field, "must be Unix milliseconds between 0 and \(FleetProtocol.timeRange.upperBound), got \(value)")
            }
            return millis
        }
        let plain = ISO8601DateFormatter()
        plain.formatOptions = [.withInternetDateTime]
        let fractional = ISO8601DateFormatter()
        fractional.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        guard let date = plain.date(from: String(value)) ?? fractional.date(from: String(value)) else {
            throw .invalid(field, "must be Unix milliseconds or an RFC 3339 time such as 2026-12-05T13:00:00Z, got '\(value)'")
        }
        let millis = (date.timeIntervalSince1970 * 1000).rounded()
        guard millis >= 0, millis <= Double(FleetProtocol.timeRange.upperBound) else {
            throw .invalid(field, "must be after 1970-01-01T00:00:00Z, got '\(value)'")
        }
        return Int64(millis)
    }

    static func range(_ parameters: some Collection<(key: Substring, value: Substring)>) throws(AdminError) -> (Int64, Int64) {
        let from = try time(value(parameters, "from"), field: "from", default: 0)
        let to = try time(value(parameters, "to"), field: "to", default: FleetProtocol.timeRange.upperBound)
        guard from < to else { throw .invalid("to", "must be later than from (\(from)), got \(to)") }
        return (from, to)
    }

    static func limit(_ parameters: some Collection<(key: Substring, value: Substring)>) throws(AdminError) -> Int {
        guard let text = value(parameters, "limit") else { return defaultLimit }
        guard let limit = Int(text), limitRange.contains(limit) else {
            throw .invalid("limit", "must be an integer between \(limitRange.lowerBound) and \(limitRange.upperBound), got '\(text)'")
        }
        return limit
    }

    static func groupBy(_ parameters: some Collection<(key: Substring, value: Substring)>) throws(AdminError) -> [UsageDimension] {
        guard let text = value(parameters, "group_by"), !text.isEmpty else { return [] }
        var dimensions: [UsageDimension] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            guard let dimension = UsageDimension(rawValue: String(part)) else {
                throw .invalid(
                    "group_by",
                    "'\(part)' is not a dimension; use a comma-separated subset of \(UsageDimension.allCases.map(\.rawValue).joined(separator: ","))")
            }
            guard !dimensions.contains(dimension) else { throw .invalid("group_by", "'\(part)' is given twice") }
            dimensions.append(dimension)
        }
        return dimensions.sorted()
    }

    /// A filter on one column (`key`, `team`, …): any string up to the record limit.
    static func filter(_ parameters: some Collection<(key: Substring, value: Substring)>, _ name: String) throws(AdminError) -> String? {
        guard let text = value(parameters, name) else { return nil }
        guard text.utf8.count <= FleetProtocol.maxNameBytes else {
            throw .invalid(name, "must be at most \(FleetProtocol.maxNameBytes) bytes")
        }
        return String(text)
    }

    /// Refuses parameters the endpoint does not know (a misspelt filter would otherwise widen the answer).
    static func checkKnown(_ parameters: some Collection<(key: Substring, value: Substring)>, _ known: Set<String>) throws(AdminError) {
        var seen = Set<String>()
        for (key, _) in parameters {
            let name = String(key)
            guard known.contains(name) else {
                throw .invalid(name, "unknown parameter; this endpoint takes \(known.sorted().joined(separator: ", "))")
            }
            guard seen.insert(name).inserted else { throw .invalid(name, "is given more than once") }
        }
    }

    private static func value(_ parameters: some Collection<(key: Substring, value: Substring)>, _ name: String) -> Substring? {
        parameters.first { $0.key == name }?.value
    }
}

/// Opaque cursors: base64url (no padding) of a JSON array of strings whose first element says
/// what the cursor is for.
enum UsageCursor {
    static func encode(_ parts: [String]) -> String {
        let json = (try? JSONEncoder().encode(parts)) ?? Data("[]".utf8)
        return json.base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: Substring, kind: String, count: Int) throws(AdminError) -> [String] {
        let refused = AdminError.invalid("cursor", "is not a cursor this endpoint returned for this query")
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.utf8.count % 4) % 4)
        guard text.utf8.count <= 4096, let data = Data(base64Encoded: base64),
            let elements = try? JSONDecoder().decode([String].self, from: data),
            elements.count == count + 1, elements.first == kind
        else { throw refused }
        return Array(elements.dropFirst())
    }

    /// The summary's cursor: the group-by list (a cursor of another grouping is refused) and the values.
    static func summary(_ groupBy: [UsageDimension], _ values: [String]) -> String {
        encode(["usage:" + groupBy.map(\.rawValue).joined(separator: ",")] + values)
    }

    static func summaryValues(_ text: Substring, groupBy: [UsageDimension]) throws(AdminError) -> [String] {
        try decode(text, kind: "usage:" + groupBy.map(\.rawValue).joined(separator: ","), count: groupBy.count)
    }

    static func records(_ position: UsageRecordPosition) -> String {
        encode(["records", String(position.timeMillis), position.id])
    }

    static func recordPosition(_ text: Substring) throws(AdminError) -> UsageRecordPosition {
        let parts = try decode(text, kind: "records", count: 2)
        guard let time = Int64(parts[0]) else {
            throw .invalid("cursor", "is not a cursor this endpoint returned for this query")
        }
        return UsageRecordPosition(timeMillis: time, id: parts[1])
    }
}
