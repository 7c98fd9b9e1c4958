// Usage that is not tokens: a record's `unit` and `search_units` read from the wire (old senders
// without them included), stored and summed by both stores, and migration 5 on a database an
// older sluiced left behind.
import Hummingbird
@testable import SluiceAdmin
import SluiceCore
import Testing

@Suite("Usage units")
struct UsageUnitsTests {
    @Test("unit and search_units are read; a record without them is tokens with no search units")
    func wire() throws {
        let batch = try FleetProtocol.readBatch(
            Array(
                batchJSON([
                    recordJSON("old"),
                    recordJSON("rerank", ["model": "\"rerank-v3.5\"", "unit": "\"tokens\"", "search_units": "3"]),
                    recordJSON("image", ["unit": "\"images\"", "input_tokens": "0", "output_tokens": "2"]),
                ]).utf8))
        #expect(batch.rejected.isEmpty)
        #expect(batch.ignoredFields.isEmpty)
        let records = batch.records.map(\.record)
        #expect(records.map(\.unit) == [.tokens, .tokens, .images])
        #expect(records.map(\.searchUnits) == [0, 3, 0])
        #expect(records[2].outputTokens == 2)
    }

    @Test("a bad unit or search_units rejects the record, naming the field")
    func rejections() throws {
        let cases: [([String: String?], String)] = [
            (["unit": "\"pixels\""], "unit: must be one of 'tokens', 'characters', 'seconds', 'images', got 'pixels'"),
            (["unit": "3"], "unit: must be a string, got number"),
            (["unit": "null"], "unit: must be a string, got null"),
            (["search_units": "-1"], "search_units: must be an integer between 0 and 1000000000, got -1"),
            (["search_units": "1000000001"], "search_units: must be an integer between 0 and 1000000000, got 1000000001"),
            (["search_units": "\"2\""], "search_units: must be an integer between 0 and 1000000000, got string"),
            (["search_units": "null"], "search_units: must be an integer between 0 and 1000000000, got null"),
        ]
        let batch = try FleetProtocol.readBatch(
            Array(batchJSON(cases.enumerated().map { recordJSON("bad-\($0.offset)", $0.element.0) } + [recordJSON("good")]).utf8))
        #expect(batch.records.map(\.record.id) == ["good"])
        #expect(batch.rejected.map(\.error) == cases.map(\.1))
    }

    @Test("what the module writes, sluiced reads back equal, with and without the new fields")
    func roundTrip() throws {
        let records = [
            FleetUsageRecord(id: "a", timeMillis: 5, model: "rerank-v3.5", inputTokens: 40, searchUnits: 2, costMicros: 4000),
            FleetUsageRecord(id: "b", timeMillis: 6, model: "dall-e-3", unit: .images, outputTokens: 3, costMicros: 120_000),
            FleetUsageRecord(id: "c", timeMillis: 7, model: "tts-1", unit: .characters, inputTokens: 1200),
            FleetUsageRecord(id: "d", timeMillis: 8, model: "whisper-1", unit: .seconds, inputTokens: 61),
        ]
        let body = FleetUsageRecord.batchBody(envoy: "e", records: records)
        let text = String(decoding: body, as: UTF8.self)
        #expect(text.contains(#""unit":"tokens","input_tokens":40,"cached_input_tokens":0,"output_tokens":0,"search_units":2,"#))
        #expect(text.contains(#""unit":"images""#))
        let batch = try FleetProtocol.readBatch(body)
        #expect(batch.records.map(\.record) == records)
        #expect(batch.ignoredFields.isEmpty)
    }

    @Test("stores keep unit and search_units; sums keep tokens apart from images, speech and audio", arguments: StoreKind.available)
    func stores(kind: StoreKind) async throws {
        try await TestDatabase(kind).with { store in
            var rerank = usage("rerank", at: 100, model: "rerank-v3.5", tokens: (40, 0, 0), micros: 2000)
            rerank.searchUnits = 2
            var image = usage("image", at: 101, model: "dall-e-3", tokens: (0, 0, 3), micros: 120_000, ttft: nil)
            image.unit = .images
            var speech = usage("speech", at: 102, model: "tts-1", tokens: (1200, 0, 0), micros: 18_000, ttft: nil)
            speech.unit = .characters
            var audio = usage("audio", at: 103, model: "whisper-1", tokens: (61, 0, 0), micros: 6100, ttft: nil)
            audio.unit = .seconds
            let chat = usage("chat", at: 104, tokens: (10, 2, 20), micros: 1000)
            let records = [rerank, image, speech, audio, chat]
            #expect(try await store.insertUsage(records, envoy: "e", receivedAtMillis: 1).accepted == 5)

            let page = try await store.usageRecords(UsageRecordQuery(from: 0, to: 1000))
            #expect(page.records.map(\.record) == records.reversed())

            let totals = try await store.usageSummary(UsageSummaryQuery(from: 0, to: 1000, groupBy: [])).totals
            #expect(
                totals
                    == UsageTotals(
                        requests: 5, errors: 0, inputTokens: 50, cachedInputTokens: 2, outputTokens: 20,
                        costMicroUSD: 147_100, searchUnits: 2, images: 3, speechCharacters: 1200, audioSeconds: 61))
            let byModel = try await store.usageSummary(UsageSummaryQuery(from: 0, to: 1000, groupBy: [.model]))
            let rerankRow = try #require(byModel.groups.first { $0.values == ["rerank-v3.5"] })
            #expect(rerankRow.totals.searchUnits == 2 && rerankRow.totals.inputTokens == 40)
            let imageRow = try #require(byModel.groups.first { $0.values == ["dall-e-3"] })
            #expect(imageRow.totals.images == 3 && imageRow.totals.outputTokens == 0)
        }
    }

    @Test("migration 5 keeps an older sluiced's records: tokens, no search units", arguments: StoreKind.available)
    func migration(kind: StoreKind) async throws {
        let database = try TestDatabase(kind)
        // The database as sluiced left it before migration 5, with a record in its columns.
        let old: any AdminStore
        switch kind {
        case .sqlite: old = try SQLiteAdminStore(path: database.location, migratingThrough: 4)
        case .postgres: old = try await PostgresAdminStore(url: database.location, migratingThrough: 4)
        }
        let insert = """
            INSERT INTO sluice_usage_records (id, envoy, received_at_ms, time_ms, consumer, team, model, backend,
                provider, status, input_tokens, cached_input_tokens, output_tokens, cost_micro_usd, duration_ms, ttft_ms, stream)
            VALUES ('before', 'e', 1, 50, 'alice', '', 'gpt-4o-mini', 'openai', 'openai', 200, 10, 0, 20, 700, 90, NULL, FALSE)
            """
        switch old {
        case let sqlite as SQLiteAdminStore:
            #expect(try await sqlite.appliedMigrations().count == 4)
            try await sqlite.execute(sql: insert)
        case let postgres as PostgresAdminStore:
            #expect(try await postgres.appliedMigrations() == [1, 2, 3, 4])
            try await postgres.execute(sql: insert)
        default: Issue.record("unexpected store type \(type(of: old))")
        }
        await old.close()

        try await database.with { store in
            switch store {
            case let sqlite as SQLiteAdminStore: #expect(try await sqlite.appliedMigrations().count == 5)
            case let postgres as PostgresAdminStore: #expect(try await postgres.appliedMigrations() == [1, 2, 3, 4, 5])
            default: Issue.record("unexpected store type \(type(of: store))")
            }
            var rerank = usage("after", at: 60, model: "rerank-v3.5", tokens: (0, 0, 0), micros: 2000)
            rerank.searchUnits = 1
            #expect(try await store.insertUsage([rerank], envoy: "e", receivedAtMillis: 2).accepted == 1)
            let records = try await store.usageRecords(UsageRecordQuery(from: 0, to: 100)).records.map(\.record)
            #expect(records.map(\.id) == ["after", "before"])
            #expect(records[1].unit == .tokens && records[1].searchUnits == 0 && records[1].outputTokens == 20)
            let totals = try await store.usageSummary(UsageSummaryQuery(from: 0, to: 100, groupBy: [])).totals
            #expect(totals.inputTokens == 10 && totals.outputTokens == 20 && totals.searchUnits == 1 && totals.costMicroUSD == 2700)
        }
    }

    @Test("the usage API serves search units, media sums and each record's unit; media is no token metric", arguments: StoreKind.available)
    func api(kind: StoreKind) async throws {
        var harness = APIHarness(kind: kind)
        harness.fleet = FleetIngest(token: try FleetToken(secret: FleetAPITests.fleetToken), metrics: FleetMetrics())
        try await harness.run { api, _ in
            let body = batchJSON([
                recordJSON("rerank", ["model": "\"rerank-v3.5\"", "search_units": "2", "output_tokens": "0", "cached_input_tokens": "0"]),
                recordJSON("image", ["model": "\"dall-e-3\"", "unit": "\"images\"", "input_tokens": "0", "cached_input_tokens": "0", "output_tokens": "4"]),
                recordJSON("old-sender"),
            ])
            let posted = try await api.call(.post, "/v1/fleet/usage", body, authorization: "Bearer \(FleetAPITests.fleetToken)")
            #expect(posted["accepted"]?.int64Value == 3, "\(posted.text)")
            #expect(posted["ignored_fields"] == nil || posted["ignored_fields"]?.arrayValue?.isEmpty == true)

            let summary = try await api.call(.get, "/v1/admin/usage?group_by=model")
            #expect(summary.status == .ok, "\(summary.text)")
            #expect(summary["totals"]?["search_units"]?.int64Value == 2)
            #expect(summary["totals"]?["images"]?.int64Value == 4)
            #expect(summary["totals"]?["speech_characters"]?.int64Value == 0)
            #expect(summary["totals"]?["audio_seconds"]?.int64Value == 0)
            // 12 input tokens each for rerank and the old sender; the image's counts are images.
            #expect(summary["totals"]?["input_tokens"]?.int64Value == 24)
            #expect(summary["totals"]?["output_tokens"]?.int64Value == 30)
            let rows = summary["groups"]?.arrayValue ?? []
            #expect(rows.first { $0["model"]?.stringValue == "rerank-v3.5" }?["search_units"]?.int64Value == 2)

            let records = try await api.call(.get, "/v1/admin/usage/records")
            let byID = Dictionary(
                uniqueKeysWithValues: (records["records"]?.arrayValue ?? []).compactMap { row in row["id"]?.stringValue.map { ($0, row) } })
            #expect(byID["rerank"]?["search_units"]?.int64Value == 2)
            #expect(byID["rerank"]?["unit"]?.stringValue == "tokens")
            #expect(byID["image"]?["unit"]?.stringValue == "images")
            #expect(byID["old-sender"]?["unit"]?.stringValue == "tokens")
            #expect(byID["old-sender"]?["search_units"]?.int64Value == 0)

            let metrics = try await api.call(.get, "/metrics", authorization: nil).text
            #expect(metrics.contains(#"gen_ai_client_token_usage_count{gen_ai_token_type="output",gen_ai_request_model="dall-e-3",gen_ai_provider_name="openai"} 0"#))
            #expect(metrics.contains(#"gen_ai_client_token_usage_count{gen_ai_token_type="input",gen_ai_request_model="rerank-v3.5",gen_ai_provider_name="openai"} 1"#))
        }
    }

    @Test("sluiced usage shows a column per non-token unit only when the range has some")
    func cli() async throws {
        try await TestDatabase(.sqlite).with { store in
            var rerank = usage("rerank", at: 1000, model: "rerank-v3.5", tokens: (40, 0, 0), micros: 2000)
            rerank.searchUnits = 2
            _ = try await store.insertUsage([rerank, usage("chat", at: 1001)], envoy: "e", receivedAtMillis: 1)
            let text = try await UsageCLI.summary(groupBy: "model", since: nil, from: "0", to: "2000", store: store, nowMillis: 5000)
            #expect(
                text == """
                    MODEL        REQUESTS  ERRORS  INPUT  CACHED  OUTPUT  SEARCH UNITS  COST
                    gpt-4o-mini  1         0       10     2       20      0             $0.001
                    rerank-v3.5  1         0       40     0       0       2             $0.002
                    total        2         0       50     2       20      2             $0.003

                    """)
        }
    }
}
