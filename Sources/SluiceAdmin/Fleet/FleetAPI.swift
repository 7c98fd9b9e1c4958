// The fleet's side of sluiced's HTTP API: `POST /v1/fleet/usage`, where every Envoy's background
// worker delivers usage records (fleet token), and `GET /v1/admin/usage[/records]`, where people
// read them (admin token).
import Foundation
import Hummingbird
import Logging
import SluiceCore

/// What the fleet endpoints need: the fleet token and the metrics the records feed.
public struct FleetIngest: Sendable {
    /// The bearer token Envoys present; nil refuses every `/v1/fleet/` call (401).
    public var token: FleetToken?
    public var metrics: FleetMetrics

    public init(token: FleetToken?, metrics: FleetMetrics = FleetMetrics()) {
        self.token = token
        self.metrics = metrics
    }

    /// No fleet token: `/v1/fleet/` answers 401.
    public static var disabled: FleetIngest { FleetIngest(token: nil) }
}

struct FleetAPI: Sendable {
    let store: any AdminStore
    let ingest: FleetIngest
    let logger: Logger
    let now: @Sendable () -> Int64

    // MARK: POST /v1/fleet/usage

    func postUsage(_ request: Request) async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: FleetProtocol.maxBodyBytes)
        } catch {
            throw HTTPError(.contentTooLarge, message: "the body is larger than \(FleetProtocol.maxBodyBytes) bytes")
        }
        let batch = try FleetProtocol.readBatch(Array(buffer.readableBytesView))
        let records = batch.records.map(\.record)
        let result = try await store.insertUsage(records, envoy: batch.envoy, receivedAtMillis: now())
        ingest.metrics.observe(
            stored: zip(records, result.inserted).lazy.filter(\.1).map(\.0), duplicates: result.duplicates,
            rejected: batch.rejected.count)
        if !batch.rejected.isEmpty {
            // The sender drops these: say once per batch which, so the loss is visible here too.
            logger.warning(
                "fleet: usage records rejected",
                metadata: [
                    "envoy": "\(batch.envoy)", "rejected": "\(batch.rejected.count)",
                    "first": "\(batch.rejected[0].index): \(batch.rejected[0].error)",
                ])
        }
        return AdminAPI.json(
            UsageIngestJSON(
                accepted: result.accepted, duplicates: result.duplicates,
                rejected: batch.rejected.map { .init(index: $0.index, error: $0.error) }))
    }

    // MARK: GET /v1/admin/usage

    static let summaryParameters: Set<String> = ["from", "to", "group_by", "limit", "cursor"]
    static let recordParameters: Set<String> = ["from", "to", "key", "team", "model", "backend", "limit", "cursor"]

    func usage(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        try UsageParameters.checkKnown(parameters, Self.summaryParameters)
        let (from, to) = try UsageParameters.range(parameters)
        let groupBy = try UsageParameters.groupBy(parameters)
        var query = UsageSummaryQuery(from: from, to: to, groupBy: groupBy, limit: try UsageParameters.limit(parameters))
        if let cursor = parameters["cursor"] {
            guard !groupBy.isEmpty else { throw AdminError.invalid("cursor", "there is no next page without group_by") }
            query.after = try UsageCursor.summaryValues(cursor, groupBy: groupBy)
        }
        let summary = try await store.usageSummary(query)
        return AdminAPI.json(
            UsageSummaryJSON(
                from: from, to: to, groupBy: groupBy.map(\.rawValue),
                groups: summary.groups.map { UsageRowJSON(dimensions: groupBy, values: $0.values, totals: $0.totals) },
                totals: UsageRowJSON(dimensions: [], values: [], totals: summary.totals),
                nextCursor: summary.nextAfter.map { UsageCursor.summary(groupBy, $0) }))
    }

    // MARK: GET /v1/admin/usage/records

    func records(_ request: Request) async throws -> Response {
        let parameters = request.uri.queryParameters
        try UsageParameters.checkKnown(parameters, Self.recordParameters)
        let (from, to) = try UsageParameters.range(parameters)
        var query = UsageRecordQuery(
            from: from, to: to, key: try UsageParameters.filter(parameters, "key"),
            team: try UsageParameters.filter(parameters, "team"), model: try UsageParameters.filter(parameters, "model"),
            backend: try UsageParameters.filter(parameters, "backend"), limit: try UsageParameters.limit(parameters))
        if let cursor = parameters["cursor"] { query.after = try UsageCursor.recordPosition(cursor) }
        let page = try await store.usageRecords(query)
        return AdminAPI.json(
            UsageRecordsJSON(records: page.records.map(UsageRecordJSON.init), nextCursor: page.next.map(UsageCursor.records)))
    }
}

/// Refuses `/v1/fleet/...` without the fleet token, before the body is read.
struct FleetAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let token: FleetToken?

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        guard let token, token.authorizes(authorizationHeader: request.headers[.authorization]) else {
            throw AdminError(.unauthorized, "missing or wrong fleet token (Authorization: Bearer <fleet token>)")
        }
        return try await next(request, context)
    }
}

// MARK: - JSON

struct UsageIngestJSON: Encodable {
    struct Rejected: Encodable {
        var index: Int
        var error: String
    }

    var accepted: Int
    var duplicates: Int
    var rejected: [Rejected]
}

/// A summary row: the group's values under their dimension's name, then the sums.
struct UsageRowJSON: Encodable {
    var dimensions: [UsageDimension]
    var values: [String]
    var totals: UsageTotals

    struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ name: String) { stringValue = name }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (dimension, value) in zip(dimensions, values) { try container.encode(value, forKey: Key(dimension.rawValue)) }
        try container.encode(totals.requests, forKey: Key("requests"))
        try container.encode(totals.errors, forKey: Key("errors"))
        try container.encode(totals.inputTokens, forKey: Key("input_tokens"))
        try container.encode(totals.cachedInputTokens, forKey: Key("cached_input_tokens"))
        try container.encode(totals.outputTokens, forKey: Key("output_tokens"))
        try container.encode(totals.costMicroUSD, forKey: Key("cost_micro_usd"))
        try container.encode(Dollars.format(micros: totals.costMicroUSD), forKey: Key("cost_usd"))
    }
}

struct UsageSummaryJSON: Encodable {
    var from: Int64
    var to: Int64
    var groupBy: [String]
    var groups: [UsageRowJSON]
    var totals: UsageRowJSON
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case from, to
        case groupBy = "group_by"
        case groups, totals
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(from, forKey: .from)
        try container.encode(to, forKey: .to)
        try container.encode(groupBy, forKey: .groupBy)
        try container.encode(groups, forKey: .groups)
        try container.encode(totals, forKey: .totals)
        try container.encode(nextCursor, forKey: .nextCursor)  // null on the last page
    }
}

struct UsageRecordJSON: Encodable {
    var stored: StoredUsageRecord

    enum CodingKeys: String, CodingKey {
        case id, envoy
        case receivedAtMillis = "received_at_ms"
        case timeMillis = "time_ms"
        case key, team, model, backend, provider, status
        case inputTokens = "input_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case outputTokens = "output_tokens"
        case costMicroUSD = "cost_micro_usd"
        case costUSD = "cost_usd"
        case durationMillis = "duration_ms"
        case ttftMillis = "ttft_ms"
        case stream
    }

    func encode(to encoder: any Encoder) throws {
        let record = stored.record
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(record.id, forKey: .id)
        try container.encode(stored.envoy, forKey: .envoy)
        try container.encode(stored.receivedAtMillis, forKey: .receivedAtMillis)
        try container.encode(record.timeMillis, forKey: .timeMillis)
        try container.encode(record.key, forKey: .key)
        try container.encode(record.team, forKey: .team)
        try container.encode(record.model, forKey: .model)
        try container.encode(record.backend, forKey: .backend)
        try container.encode(record.provider, forKey: .provider)
        try container.encode(record.status, forKey: .status)
        try container.encode(record.inputTokens, forKey: .inputTokens)
        try container.encode(record.cachedInputTokens, forKey: .cachedInputTokens)
        try container.encode(record.outputTokens, forKey: .outputTokens)
        try container.encode(record.costMicroUSD, forKey: .costMicroUSD)
        try container.encode(Dollars.format(micros: record.costMicroUSD), forKey: .costUSD)
        try container.encode(record.durationMillis, forKey: .durationMillis)
        try container.encode(record.ttftMillis, forKey: .ttftMillis)  // null when there was no first token
        try container.encode(record.stream, forKey: .stream)
    }
}

struct UsageRecordsJSON: Encodable {
    var records: [UsageRecordJSON]
    var nextCursor: String?

    enum CodingKeys: String, CodingKey {
        case records
        case nextCursor = "next_cursor"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(records, forKey: .records)
        try container.encode(nextCursor, forKey: .nextCursor)
    }
}
