// The fleet's side of sluiced's HTTP API: `POST /v1/fleet/usage`, where every Envoy's background
// worker delivers usage records (fleet token), and `GET /v1/admin/usage[/records]`, where people
// read them (admin token).
import Foundation
import Hummingbird
import Logging
import SluiceCore

/// What the fleet endpoints need: the fleet token, the metrics the records feed, the lease ledger.
public struct FleetIngest: Sendable {
    /// The bearer token Envoys present; nil refuses every `/v1/fleet/` call (401).
    public var token: FleetToken?
    public var metrics: FleetMetrics
    public var leases: LeaseService

    public init(
        token: FleetToken?, metrics: FleetMetrics = FleetMetrics(),
        leases: LeaseService = LeaseService(nowMillis: FleetIngest.wallClockMillis)
    ) {
        self.token = token
        self.metrics = metrics
        self.leases = leases
        metrics.attach(leases)
    }

    /// Unix milliseconds now, by the system clock.
    @Sendable public static func wallClockMillis() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

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
        if !batch.ignoredFields.isEmpty {
            logger.warning(
                "fleet: unknown fields in a usage batch ignored (is the sender newer than sluiced?)",
                metadata: ["envoy": "\(batch.envoy)", "fields": "\(batch.ignoredFields.joined(separator: ","))"])
        }
        return AdminAPI.json(
            UsageIngestJSON(
                accepted: result.accepted, duplicates: result.duplicates,
                rejected: batch.rejected.map { .init(index: $0.index, error: $0.error) },
                ignoredFields: batch.ignoredFields.isEmpty ? nil : batch.ignoredFields))
    }

    // MARK: POST /v1/fleet/leases

    func postLeases(_ request: Request) async throws -> Response {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: FleetProtocol.maxBodyBytes)
        } catch {
            throw HTTPError(.contentTooLarge, message: "the body is larger than \(FleetProtocol.maxBodyBytes) bytes")
        }
        let body = try FleetProtocol.readLeaseRequest(Array(buffer.readableBytesView))
        let logger = self.logger
        let answer: LeaseAnswer
        do {
            answer = try await ingest.leases.handle(body, store: store) { error in
                logger.error("fleet: lease accounts not stored (a restart now forgets them): \(error)")
            }
        } catch {
            // The shared ledger decides in the database: without it there is no grant to give.
            // The Envoy resends the request; its slices last until their deadlines meanwhile.
            logger.error("fleet: lease request of \(body.holder) not applied: \(error)")
            throw AdminError(.storeFailure, "the lease ledger's database failed; resend the request: \(error)")
        }
        if let first = answer.limitMismatches.first {
            // The Envoy's config is not sluiced's (stale, or altered): its limits are ignored.
            logger.warning(
                "fleet: lease items state other limits than sluiced's config; sluiced's are used",
                metadata: [
                    "envoy": "\(body.holder)", "items": "\(answer.limitMismatches.count)",
                    "first": "\(first.index): \(first.key) reported \(first.reported), sluiced's limit \(first.limit)",
                ])
        }
        if !answer.rejected.isEmpty {
            logger.warning(
                "fleet: lease items rejected",
                metadata: [
                    "envoy": "\(body.holder)", "rejected": "\(answer.rejected.count)",
                    "first": "\(answer.rejected[0].index): \(answer.rejected[0].error)",
                ])
        }
        if !body.ignoredFields.isEmpty {
            logger.warning(
                "fleet: unknown fields in a lease request ignored (is the sender newer than sluiced?)",
                metadata: ["envoy": "\(body.holder)", "fields": "\(body.ignoredFields.joined(separator: ","))"])
        }
        // The ledger answers applied items in order: pair each grant with its index in the request.
        let appliedIndexes = body.items.map(\.index).filter { index in !answer.rejected.contains { $0.index == index } }
        return AdminAPI.json(
            LeaseAnswerJSON(
                seq: body.seq, replay: answer.replay,
                grants: zip(appliedIndexes, answer.grants).map { LeaseGrantJSON(index: $0.0, grant: $0.1) },
                rejected: answer.rejected.map { .init(index: $0.index, error: $0.error) },
                ignoredFields: body.ignoredFields.isEmpty ? nil : body.ignoredFields,
                limitMismatches: answer.limitMismatches.isEmpty
                    ? nil : answer.limitMismatches.map { .init(index: $0.index, reported: $0.reported, limit: $0.limit) }))
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
    /// Member names ignored as unknown; absent when there were none.
    var ignoredFields: [String]?

    enum CodingKeys: String, CodingKey {
        case accepted, duplicates, rejected
        case ignoredFields = "ignored_fields"
    }
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
        try container.encode(totals.searchUnits, forKey: Key("search_units"))
        try container.encode(totals.images, forKey: Key("images"))
        try container.encode(totals.speechCharacters, forKey: Key("speech_characters"))
        try container.encode(totals.audioSeconds, forKey: Key("audio_seconds"))
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
        case unit
        case inputTokens = "input_tokens"
        case cachedInputTokens = "cached_input_tokens"
        case outputTokens = "output_tokens"
        case searchUnits = "search_units"
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
        try container.encode(record.unit.rawValue, forKey: .unit)
        try container.encode(record.inputTokens, forKey: .inputTokens)
        try container.encode(record.cachedInputTokens, forKey: .cachedInputTokens)
        try container.encode(record.outputTokens, forKey: .outputTokens)
        try container.encode(record.searchUnits, forKey: .searchUnits)
        try container.encode(record.costMicros, forKey: .costMicroUSD)
        try container.encode(Dollars.format(micros: record.costMicros), forKey: .costUSD)
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

struct LeaseGrantJSON: Encodable {
    var index: Int
    var grant: LeaseGrant

    enum CodingKeys: String, CodingKey {
        case index, scope, name, dimension, window, granted, held
        case ttlMillis = "ttl_ms"
        case expiresAtMillis = "expires_at_ms"
        case limit, consumed, outstanding, remaining
        case windowEndMillis = "window_end_ms"
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(index, forKey: .index)
        try container.encode(grant.key.scope.kind.leaseWireName, forKey: .scope)
        try container.encode(grant.key.scope.name, forKey: .name)
        try container.encode(grant.key.dimension.rawValue, forKey: .dimension)
        try container.encode(grant.window, forKey: .window)
        try container.encode(grant.granted, forKey: .granted)
        try container.encode(grant.held, forKey: .held)
        try container.encode(grant.ttlMillis, forKey: .ttlMillis)
        try container.encode(grant.expiresAtMillis, forKey: .expiresAtMillis)
        try container.encode(grant.limit, forKey: .limit)
        try container.encode(grant.consumed, forKey: .consumed)
        try container.encode(grant.outstanding, forKey: .outstanding)
        try container.encode(grant.remaining, forKey: .remaining)
        try container.encode(grant.windowEndMillis, forKey: .windowEndMillis)
    }
}

struct LeaseAnswerJSON: Encodable {
    var seq: Int64
    var replay: Bool
    var grants: [LeaseGrantJSON]
    var rejected: [UsageIngestJSON.Rejected]
    var ignoredFields: [String]?
    /// Items granted against sluiced's limit where the Envoy stated another; absent when none.
    var limitMismatches: [LimitMismatch]?

    struct LimitMismatch: Encodable {
        var index: Int
        /// The limit in the Envoy's request.
        var reported: Int64
        /// sluiced's limit, the one applied (also each grant's `limit`).
        var limit: Int64
    }

    enum CodingKeys: String, CodingKey {
        case seq, replay, grants, rejected
        case ignoredFields = "ignored_fields"
        case limitMismatches = "limit_mismatches"
    }
}
