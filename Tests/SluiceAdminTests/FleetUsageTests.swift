// Usage records: the batch reader's validation, both stores (idempotent inserts, sums, paging),
// and the HTTP side (fleet token, 400/401/413, the usage API's parameters and cursors, metrics).
import Foundation
import Hummingbird
import HummingbirdTesting
import SluiceAdmin
import SluiceCore
import Testing

/// A valid record as JSON, with `overrides` replacing (or, with nil, removing) members.
func recordJSON(_ id: String, _ overrides: [String: String?] = [:]) -> String {
    var members: [(String, String)] = [
        ("id", "\"\(id)\""), ("time_ms", "1764900000000"), ("key", "\"alice\""), ("team", "\"research\""),
        ("model", "\"gpt-4o-mini\""), ("backend", "\"openai\""), ("provider", "\"openai\""), ("status", "200"),
        ("input_tokens", "12"), ("cached_input_tokens", "2"), ("output_tokens", "30"), ("cost_micro_usd", "1500"),
        ("duration_ms", "250"), ("ttft_ms", "40"), ("stream", "true"),
    ]
    for (key, value) in overrides {
        if let index = members.firstIndex(where: { $0.0 == key }) {
            if let value { members[index].1 = value } else { members.remove(at: index) }
        } else if let value {
            members.append((key, value))
        }
    }
    return "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

func batchJSON(envoy: String = "envoy-a", _ records: [String]) -> String {
    #"{"envoy":"\#(envoy)","records":[\#(records.joined(separator: ","))]}"#
}

@Suite("Usage batches")
struct UsageBatchTests {
    @Test("a valid record is read field by field; ttft_ms may be null or absent")
    func valid() throws {
        let batch = try FleetProtocol.readBatch(
            Array(batchJSON([recordJSON("r1"), recordJSON("r2", ["ttft_ms": "null", "key": "\"\""]), recordJSON("r3", ["ttft_ms": nil])]).utf8))
        #expect(batch.envoy == "envoy-a")
        #expect(batch.rejected.isEmpty)
        #expect(batch.records.map(\.index) == [0, 1, 2])
        #expect(
            batch.records[0].record
                == FleetUsageRecord(
                    id: "r1", timeMillis: 1_764_900_000_000, key: "alice", team: "research", model: "gpt-4o-mini",
                    backend: "openai", provider: "openai", status: 200, inputTokens: 12, cachedInputTokens: 2, outputTokens: 30,
                    costMicros: 1500, durationMillis: 250, ttftMillis: 40, stream: true))
        #expect(batch.records[1].record.ttftMillis == nil)
        #expect(batch.records[1].record.key == "")
        #expect(batch.records[2].record.ttftMillis == nil)
    }

    @Test("each bad record is rejected on its own, naming its field and the range")
    func rejections() throws {
        let cases: [([String: String?], String)] = [
            (["status": "600"], "status: must be an integer between 100 and 599, got 600"),
            (["status": "99"], "status: must be an integer between 100 and 599, got 99"),
            (["status": "\"200\""], "status: must be an integer between 100 and 599, got string"),
            (["input_tokens": "-1"], "input_tokens: must be an integer between 0 and 1000000000, got -1"),
            (["output_tokens": "1000000001"], "output_tokens: must be an integer between 0 and 1000000000, got 1000000001"),
            (["cached_input_tokens": "1.5"], "cached_input_tokens: must be an integer between 0 and 1000000000, got 1.5"),
            (["cost_micro_usd": "1e3"], "cost_micro_usd: must be an integer between 0 and 1000000000000000, got 1e3"),
            (["cost_micro_usd": "1000000000000001"], "cost_micro_usd: must be an integer between 0 and 1000000000000000, got 1000000000000001"),
            (["time_ms": "9007199254740993"], "time_ms: must be an integer between 0 and 9007199254740992, got 9007199254740993"),
            (["time_ms": "99999999999999999999999"], "time_ms: must be an integer between 0 and 9007199254740992, got 99999999999999999999999"),
            (["duration_ms": nil], "duration_ms: is required"),
            (["ttft_ms": "-4"], "ttft_ms: must be an integer between 0 and 1000000000, got -4"),
            (["stream": "1"], "stream: must be true or false, got number"),
            (["id": "\"\""], "id: must be 1 to 128 printable ASCII characters, got 0 bytes"),
            (["id": "\"\(String(repeating: "x", count: 129))\""], "id: must be 1 to 128 printable ASCII characters, got 129 bytes"),
            (["id": #""caf\u00e9""#], "id: must be printable ASCII (0x20 to 0x7E)"),
            (["id": "7"], "id: must be a string, got number"),
            (["model": "\"\(String(repeating: "m", count: 257))\""], "model: must be at most 256 bytes, got 257"),
            (["team": #""a\nb""#], "team: must not contain control characters"),
            (["provider": "null"], "provider: must be a string, got null"),
        ]
        let records = [recordJSON("good-0")] + cases.enumerated().map { recordJSON("bad-\($0.offset)", $0.element.0) }
            + ["\"not a record\"", recordJSON("good-last")]
        let batch = try FleetProtocol.readBatch(Array(batchJSON(records).utf8))
        #expect(batch.records.map(\.record.id) == ["good-0", "good-last"])
        #expect(batch.records.map(\.index) == [0, cases.count + 2])
        #expect(batch.rejected.map(\.index) == Array(1...(cases.count + 1)))
        for (rejection, expected) in zip(batch.rejected, cases.map(\.1) + ["a record must be a JSON object, got string"]) {
            #expect(rejection.error == expected)
        }
    }

    @Test("unknown members are ignored and named, never a reason to lose a record")
    func unknownMembers() throws {
        let body = #"{"envoy":"e","version":2,"records":[\#(recordJSON("a", ["cost_usd": "0.5", "region": "\"eu\""])),\#(recordJSON("b"))]}"#
        let batch = try FleetProtocol.readBatch(Array(body.utf8))
        #expect(batch.records.map(\.record.id) == ["a", "b"])
        #expect(batch.rejected.isEmpty)
        #expect(batch.ignoredFields == ["cost_usd", "region", "version"])
    }

    @Test("a malformed envelope is refused whole, naming the field")
    func envelope() throws {
        let cases: [(String, String?)] = [
            ("not json", nil),
            ("[]", nil),
            (#"{"records":[\#(recordJSON("a"))]}"#, "envoy"),
            (#"{"envoy":"","records":[\#(recordJSON("a"))]}"#, "envoy"),
            (#"{"envoy":5,"records":[\#(recordJSON("a"))]}"#, "envoy"),
            (#"{"envoy":"e"}"#, "records"),
            (#"{"envoy":"e","records":{}}"#, "records"),
            (#"{"envoy":"e","records":[]}"#, "records"),
            (batchJSON((0...1000).map { recordJSON("r\($0)") }), "records"),
        ]
        for (body, field) in cases {
            do {
                _ = try FleetProtocol.readBatch(Array(body.utf8))
                Issue.record("accepted \(body.prefix(80))")
            } catch {
                #expect(error.code == .invalidRequest)
                #expect(error.field == field, "\(error)")
            }
        }
        // 1000 records is the most a batch holds.
        #expect((try? FleetProtocol.readBatch(Array(batchJSON((0..<1000).map { recordJSON("r\($0)") }).utf8)))?.records.count == 1000)
    }
}

// MARK: - Stores

func usage(
    _ id: String, at time: Int64, key: String = "alice", team: String = "research", model: String = "gpt-4o-mini",
    backend: String = "openai", provider: String = "openai", status: Int = 200, tokens: (Int, Int, Int) = (10, 2, 20),
    micros: Int64 = 1000, ttft: Int64? = 30
) -> FleetUsageRecord {
    FleetUsageRecord(
        id: id, timeMillis: time, key: key, team: team, model: model, backend: backend, provider: provider, status: status,
        inputTokens: tokens.0, cachedInputTokens: tokens.1, outputTokens: tokens.2, costMicros: micros, durationMillis: 100,
        ttftMillis: ttft, stream: ttft != nil)
}

@Suite("Usage stores")
struct UsageStoreTests {
    @Test("records are stored once by id, within a batch and across batches and reopenings", arguments: StoreKind.available)
    func idempotent(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        let records = [usage("a", at: 1000), usage("b", at: 2000), usage("a", at: 9999, key: "mallory"), usage("c", at: 3000)]
        try await database.with { store in
            let first = try await store.insertUsage(records, envoy: "e1", receivedAtMillis: 5)
            #expect(first.inserted == [true, true, false, true])
            #expect(first.accepted == 3 && first.duplicates == 1)
            let again = try await store.insertUsage([usage("c", at: 1), usage("d", at: 4000)], envoy: "e2", receivedAtMillis: 6)
            #expect(again.inserted == [false, true])
            #expect(try await store.usageRecordCount() == 4)
            // Usage writes are not config changes: the version Envoys are served stays.
            #expect(try await store.version() == 0)
        }
        try await database.with { store in
            #expect(try await store.insertUsage(records, envoy: "e1", receivedAtMillis: 7).inserted == [false, false, false, false])
            let page = try await store.usageRecords(UsageRecordQuery(from: 0, to: 10_000))
            #expect(page.records.map(\.record.id) == ["d", "c", "b", "a"])
            // The first copy of "a" is the one kept, with where and when it arrived.
            let a = try #require(page.records.last)
            #expect(a.record == usage("a", at: 1000))
            #expect(a.envoy == "e1" && a.receivedAtMillis == 5)
            #expect(page.records.first?.envoy == "e2")
            #expect(page.next == nil)
        }
    }

    @Test("sums per group over [from, to), ordered by the values, paged with a keyset", arguments: StoreKind.available)
    func summary(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            var records: [FleetUsageRecord] = []
            for index in 0..<30 {
                records.append(
                    usage(
                        "r\(index)", at: Int64(1000 + index), key: ["alice", "bob", "Zed"][index % 3],
                        team: index % 2 == 0 ? "research" : "", model: ["gpt-4o", "claude"][index % 2],
                        status: index % 5 == 0 ? 429 : 200, tokens: (index, 1, 2), micros: Int64(index) * 1_000_001))
            }
            records.append(usage("late", at: 5000, key: "alice"))  // outside [1000, 2000)
            _ = try await store.insertUsage(records, envoy: "e", receivedAtMillis: 1)

            let all = try await store.usageSummary(UsageSummaryQuery(from: 1000, to: 2000, groupBy: []))
            #expect(all.groups.count == 1)
            let expected = UsageTotals(
                requests: 30, errors: 6, inputTokens: (0..<30).reduce(0, +), cachedInputTokens: 30, outputTokens: 60,
                costMicroUSD: (0..<30).reduce(0, +) * 1_000_001)
            #expect(all.totals == expected)
            #expect(all.groups.first?.totals == expected)
            #expect(all.nextAfter == nil)

            // Group by key and model (given in any order: sorted to key, model), two rows a page.
            var pages: [[UsageGroup]] = []
            var after: [String]?
            repeat {
                let page = try await store.usageSummary(
                    UsageSummaryQuery(from: 1000, to: 2000, groupBy: [.model, .key], limit: 2, after: after))
                #expect(page.totals == expected)
                pages.append(page.groups)
                after = page.nextAfter
            } while after != nil && pages.count < 10
            let groups = pages.flatMap { $0 }
            // Byte order: upper case before lower case.
            #expect(groups.map(\.values) == [
                ["Zed", "claude"], ["Zed", "gpt-4o"], ["alice", "claude"], ["alice", "gpt-4o"], ["bob", "claude"],
                ["bob", "gpt-4o"],
            ])
            #expect(pages.map(\.count) == [2, 2, 2])
            #expect(groups.reduce(0) { $0 + $1.totals.requests } == 30)
            #expect(groups.reduce(0) { $0 + $1.totals.costMicroUSD } == expected.costMicroUSD)
            let aliceGPT = try #require(groups.first { $0.values == ["alice", "gpt-4o"] })
            // alice: index % 3 == 0, gpt-4o: index % 2 == 0 → 0, 6, 12, 18, 24.
            #expect(aliceGPT.totals.requests == 5)
            #expect(aliceGPT.totals.errors == 1)  // 0 (status 429)
            #expect(aliceGPT.totals.inputTokens == 0 + 6 + 12 + 18 + 24)

            // An empty team is a group of its own.
            let teams = try await store.usageSummary(UsageSummaryQuery(from: 0, to: 10_000, groupBy: [.team]))
            #expect(teams.groups.map(\.values) == [[""], ["research"]])
            #expect(teams.groups.map(\.totals.requests) == [15, 16])

            let empty = try await store.usageSummary(UsageSummaryQuery(from: 0, to: 10, groupBy: []))
            #expect(empty.groups.isEmpty && empty.totals == UsageTotals())
        }
    }

    @Test("records newest first, filtered, paged without repeats or gaps", arguments: StoreKind.available)
    func recordPages(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            // Several records share a time: the id breaks the tie.
            let records: [FleetUsageRecord] = (0..<25).map { (index: Int) -> FleetUsageRecord in
                usage("id-\(index)", at: Int64(100 + index / 3), key: index % 2 == 0 ? "even" : "odd")
            }
            _ = try await store.insertUsage(records, envoy: "e", receivedAtMillis: 1)
            var seen: [String] = []
            var after: UsageRecordPosition?
            repeat {
                let page = try await store.usageRecords(UsageRecordQuery(from: 0, to: 1000, limit: 4, after: after))
                seen += page.records.map(\.record.id)
                after = page.next
            } while after != nil && seen.count < 100
            let expected = records.sorted { ($0.timeMillis, $0.id) > ($1.timeMillis, $1.id) }.map(\.id)
            #expect(seen == expected)

            let even = try await store.usageRecords(UsageRecordQuery(from: 0, to: 1000, key: "even", limit: 100))
            #expect(even.records.count == 13 && even.records.allSatisfy { $0.record.key == "even" })
            let none = try await store.usageRecords(UsageRecordQuery(from: 0, to: 1000, key: "even", team: "other"))
            #expect(none.records.isEmpty)
            let window = try await store.usageRecords(UsageRecordQuery(from: 101, to: 103))
            #expect(window.records.map(\.record.timeMillis).allSatisfy { (101..<103).contains($0) })
            #expect(window.records.count == 6)
        }
    }
}

// MARK: - HTTP

@Suite("Fleet API")
struct FleetAPITests {
    static let fleetToken = "fleet-token-0123456789abcdef"

    func harness(_ metrics: FleetMetrics = FleetMetrics(), kind: StoreKind = .sqlite) throws -> APIHarness {
        var harness = APIHarness(kind: kind)
        harness.fleet = FleetIngest(token: try FleetToken(secret: Self.fleetToken), metrics: metrics)
        return harness
    }

    func post(_ api: APIClient, _ body: String, token: String? = fleetToken) async throws -> APIResponse {
        try await api.call(.post, "/v1/fleet/usage", body, authorization: token.map { "Bearer \($0)" })
    }

    @Test("ingest: accepted, duplicates and rejected; a retried batch counts once in the metrics", arguments: StoreKind.available)
    func ingest(kind: StoreKind) async throws {
        try await harness(kind: kind).run { api, store in
            let body = batchJSON([recordJSON("x1"), recordJSON("x2", ["status": "700"]), recordJSON("x3", ["status": "503", "cost_micro_usd": "0"])])
            let first = try await post(api, body)
            #expect(first.status == .ok)
            #expect(first["accepted"]?.int64Value == 2)
            #expect(first["duplicates"]?.int64Value == 0)
            #expect(first["rejected"]?.arrayValue?.first?["index"]?.int64Value == 1)
            #expect(first["rejected"]?.arrayValue?.first?["error"]?.stringValue == "status: must be an integer between 100 and 599, got 700")
            let retry = try await post(api, body)
            #expect(retry["accepted"]?.int64Value == 0)
            #expect(retry["duplicates"]?.int64Value == 2)
            #expect(retry["rejected"]?.arrayValue?.count == 1)
            #expect(try await store.usageRecordCount() == 2)

            let metrics = try await api.call(.get, "/metrics", authorization: nil).text
            #expect(metrics.contains("sluice_admin_store_version 0\n"))
            #expect(metrics.contains("sluiced_usage_records_received_total 2\n"))
            #expect(metrics.contains("sluiced_usage_records_duplicated_total 2\n"))
            #expect(metrics.contains("sluiced_usage_records_rejected_total 2\n"))
            #expect(metrics.contains(#"sluice_requests_total{key="alice",team="research",model="gpt-4o-mini",backend="openai",status_class="2xx"} 1"#))
            #expect(metrics.contains(#"sluice_requests_total{key="alice",team="research",model="gpt-4o-mini",backend="openai",status_class="5xx"} 1"#))
            #expect(metrics.contains(#"sluice_cost_usd_total{key="alice",team="research",model="gpt-4o-mini",backend="openai",status_class="2xx"} 0.0015"#))
            // Token usage only for the answered request: one observation each.
            #expect(metrics.contains(#"gen_ai_client_token_usage_count{gen_ai_token_type="input",gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai"} 1"#))
            #expect(metrics.contains(#"gen_ai_client_token_usage_sum{gen_ai_token_type="output",gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai"} 30"#))
            #expect(metrics.contains(#"gen_ai_client_token_usage_bucket{gen_ai_token_type="input",gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai",le="16.0"} 1"#))
            #expect(metrics.contains(#"gen_ai_server_request_duration_seconds_count{gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai"} 2"#))
            #expect(metrics.contains(#"gen_ai_server_time_to_first_token_seconds_bucket{gen_ai_request_model="gpt-4o-mini",gen_ai_provider_name="openai",le="0.04"} 2"#))
            #expect(metrics.contains("sluiced_ads_clients_connected 0.0\n"))
        }
    }

    @Test("the fleet token, not the admin token, and only it; 400 for the envelope; 413 past 4 MiB")
    func refusals() async throws {
        try await harness().run { api, store in
            let body = batchJSON([recordJSON("y")])
            for token in [nil, APIHarness.token, "wrong-fleet-token-0123456789", Self.fleetToken + "x"] as [String?] {
                let response = try await post(api, body, token: token)
                #expect(response.status == .unauthorized, "\(token ?? "none")")
                #expect(response.errorCode == "unauthorized")
            }
            // The fleet token does not open the admin API.
            #expect(try await api.call(.get, "/v1/admin/usage", authorization: "Bearer \(Self.fleetToken)").status == .unauthorized)
            let malformed = try await post(api, #"{"envoy":"e","records":[]}"#)
            #expect(malformed.status == .badRequest)
            #expect(malformed.errorField == "records")
            #expect(malformed["error", "message"]?.stringValue == "must hold 1 to 1000 records, got 0")
            let large = #"{"envoy":"e","records":["# + String(repeating: " ", count: 4 << 20) + "]}"
            let tooLarge = try await post(api, large)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.errorCode == "body_too_large")
            #expect(try await store.usageRecordCount() == 0)
        }
        // Without a fleet token configured, everything is refused.
        try await APIHarness().run { api, _ in
            let response = try await post(api, batchJSON([recordJSON("z")]))
            #expect(response.status == .unauthorized)
        }
    }

    @Test("the usage API: groups with cost strings, totals, cursors; the records; precise 400s", arguments: StoreKind.available)
    func usageAPI(kind: StoreKind) async throws {
        try await harness(kind: kind).run { api, _ in
            let records = (0..<7).map { index in
                recordJSON(
                    "u\(index)",
                    ["team": index < 4 ? "\"a\"" : "\"b\"", "time_ms": "\(1_764_900_000_000 + index)",
                     "cost_micro_usd": "\(index * 250_000)", "status": index == 6 ? "500" : "200"])
            }
            #expect(try await post(api, batchJSON(records))["accepted"]?.int64Value == 7)

            let first = try await api.call(.get, "/v1/admin/usage?group_by=team,model&limit=1&from=2025-12-05T00:00:00Z")
            #expect(first.status == .ok, "\(first.text)")
            #expect(first["group_by"]?.arrayValue?.compactMap(\.stringValue) == ["team", "model"])
            #expect(first["groups"]?.arrayValue?.first?["team"]?.stringValue == "a")
            #expect(first["groups"]?.arrayValue?.first?["model"]?.stringValue == "gpt-4o-mini")
            #expect(first["groups"]?.arrayValue?.first?["key"] == nil)
            #expect(first["groups"]?.arrayValue?.first?["requests"]?.int64Value == 4)
            #expect(first["groups"]?.arrayValue?.first?["cost_micro_usd"]?.int64Value == 1_500_000)
            #expect(first["groups"]?.arrayValue?.first?["cost_usd"]?.stringValue == "1.5")
            #expect(first["totals"]?["requests"]?.int64Value == 7)
            #expect(first["totals"]?["errors"]?.int64Value == 1)
            #expect(first["totals"]?["cost_usd"]?.stringValue == "5.25")
            let cursor = try #require(first["next_cursor"]?.stringValue)
            let second = try await api.call(.get, "/v1/admin/usage?group_by=team,model&limit=1&from=2025-12-05T00:00:00Z&cursor=\(cursor)")
            #expect(second["groups"]?.arrayValue?.first?["team"]?.stringValue == "b")
            #expect(second["groups"]?.arrayValue?.first?["cost_usd"]?.stringValue == "3.75")
            #expect(second["next_cursor"]?.isNull == true)
            // A cursor of another grouping is refused.
            #expect(try await api.call(.get, "/v1/admin/usage?group_by=team&cursor=\(cursor)").errorField == "cursor")

            let recent = try await api.call(.get, "/v1/admin/usage/records?team=b&limit=2")
            #expect(recent["records"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["u6", "u5"])
            #expect(recent["records"]?.arrayValue?.first?["envoy"]?.stringValue == "envoy-a")
            #expect(recent["records"]?.arrayValue?.first?["cost_usd"]?.stringValue == "1.5")
            #expect(recent["records"]?.arrayValue?.first?["status"]?.int64Value == 500)
            let next = try #require(recent["next_cursor"]?.stringValue)
            let rest = try await api.call(.get, "/v1/admin/usage/records?team=b&limit=2&cursor=\(next)")
            #expect(rest["records"]?.arrayValue?.compactMap { $0["id"]?.stringValue } == ["u4"])
            #expect(rest["next_cursor"]?.isNull == true)

            let bad: [(String, String)] = [
                ("/v1/admin/usage?group_by=team,colour", "group_by"),
                ("/v1/admin/usage?group_by=team,team", "group_by"),
                ("/v1/admin/usage?limit=0", "limit"),
                ("/v1/admin/usage?limit=1001", "limit"),
                ("/v1/admin/usage?limit=ten", "limit"),
                ("/v1/admin/usage?from=yesterday", "from"),
                ("/v1/admin/usage?from=99999999999999999999", "from"),
                ("/v1/admin/usage?from=2000&to=1000", "to"),
                ("/v1/admin/usage?groupby=team", "groupby"),
                ("/v1/admin/usage?cursor=abc", "cursor"),
                ("/v1/admin/usage?group_by=team&cursor=%%%", "cursor"),
                ("/v1/admin/usage/records?cursor=\(cursor)", "cursor"),
                ("/v1/admin/usage/records?provider=openai", "provider"),
                ("/v1/admin/usage/records?to=2026-13-01T00:00:00Z", "to"),
            ]
            for (uri, field) in bad {
                let response = try await api.call(.get, uri)
                #expect(response.status == .badRequest, "\(uri)")
                #expect(response.errorField == field, "\(uri): \(response.text)")
            }
        }
    }
}

@Suite("sluiced usage")
struct UsageCLITests {
    @Test("sums per group over --since, as a table and as the API's JSON; bad options name themselves")
    func summary() async throws {
        try await TestDatabase(.sqlite).with { store in
            let now: Int64 = 1_764_900_000_000
            _ = try await store.insertUsage(
                [
                    usage("old", at: now - 90_000_000, team: "research", micros: 7_000_000),
                    usage("r1", at: now - 1_000, team: "research", micros: 1_500_000),
                    usage("r2", at: now - 2_000, team: "research", status: 500, micros: 250_000),
                    usage("s1", at: now - 3_000, team: "", micros: 0),
                ], envoy: "e", receivedAtMillis: now)
            let text = try await UsageCLI.summary(
                groupBy: "team", since: "24h", from: nil, to: nil, store: store, nowMillis: now)
            #expect(
                text == """
                    TEAM      REQUESTS  ERRORS  INPUT  CACHED  OUTPUT  COST
                    -         1         0       10     2       20      $0
                    research  2         1       20     4       40      $1.75
                    total     3         1       30     6       60      $1.75

                    """)
            let json = try JSONParser.parse(
                try await UsageCLI.summary(groupBy: nil, since: nil, from: "0", to: nil, store: store, nowMillis: now, format: .json))
            #expect(json["totals"]?["requests"]?.int64Value == 4)
            #expect(json["totals"]?["cost_usd"]?.stringValue == "8.75")
            #expect(json["groups"]?.arrayValue?.count == 1)
            await expectAdminError(.invalidRequest, field: "since") {
                _ = try await UsageCLI.summary(groupBy: nil, since: "yesterday", from: nil, to: nil, store: store, nowMillis: now)
            }
            await expectAdminError(.invalidRequest, field: "group_by") {
                _ = try await UsageCLI.summary(groupBy: "colour", since: "1d", from: nil, to: nil, store: store, nowMillis: now)
            }
            await expectAdminError(.invalidRequest, field: "since") {
                _ = try await UsageCLI.summary(groupBy: nil, since: "1d", from: "0", to: nil, store: store, nowMillis: now)
            }
            let empty = try await UsageCLI.summary(groupBy: nil, since: nil, from: "0", to: "1000", store: store, nowMillis: now)
            #expect(empty == "No usage records in that range.\n")
        }
    }
}
