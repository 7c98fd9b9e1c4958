// The downstream filter's per-stream policy (`GatewayStream`) driven event by event, with no host:
// what it decides and which actions it asks the filter to carry out.
import Testing

@testable import SluiceCore

@Suite struct GatewayStreamTests {
    static func gateway(_ json: String) throws -> Gateway {
        Gateway(config: try GatewayConfig.parse(Array(json.utf8)))
    }

    static let config = #"""
        {"api_keys":[{"name":"demo","key":"sk-demo","team":"research","limits":{"requests_per_minute":2}}],
         "models":[{"id":"gpt-4o-mini","owned_by":"openai","route":"openai"}],
         "prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}},
         "response_cost_header":"x-sluice-cost-usd",
         "max_request_bytes":4096}
        """#

    static func head(_ method: String = "POST", _ path: String = "/v1/chat/completions", key: String? = "sk-demo") -> RequestHead {
        RequestHead(method: Array(method.utf8), path: Array(path.utf8), authorization: key.map { Array("Bearer \($0)".utf8) })
    }

    /// The machine after routing a chat request with `body`; its actions emptied.
    static func routed(_ gateway: Gateway, body: String = #"{"model":"gpt-4o-mini"}"#) -> GatewayStream {
        var machine = GatewayStream(gateway: gateway)
        _ = machine.requestHeaders(head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        _ = machine.route(body: Array(body.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        machine.actions.removeAll()
        return machine
    }

    static func counts(_ actions: [GatewayAction]) -> [(GatewayCounter, [String], UInt64)] {
        actions.compactMap { if case .count(let counter, let labels, let value) = $0 { (counter, labels, value) } else { nil } }
    }

    static func metadata(_ actions: [GatewayAction]) -> [String: String] {
        var out: [String: String] = [:]
        for case .writeMetadata(let entries) in actions {
            for (key, value) in entries { out[key.name.description] = value }
        }
        return out
    }

    @Test func aChatRequestWaitsForItsBodyThenIsRoutedInOneMetadataBatch() throws {
        let gateway = try Self.gateway(Self.config)
        var machine = GatewayStream(gateway: gateway)
        let status = machine.requestHeaders(
            Self.head(), contentLength: 22, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        #expect(status == .stop)
        #expect(machine.awaitingBody)
        guard case .removeRequestHeader(let removed) = machine.actions.first else {
            Issue.record("the client's key must be removed first")
            return
        }
        #expect(removed.description == "authorization")
        #expect(machine.actions.contains { if case .raiseBufferLimit(let limit) = $0 { limit > 4096 } else { false } })
        machine.actions.removeAll()

        let step1 = machine.requestBody(bodySize: 10, endOfStream: false, nowMillis: 1_000)
        #expect(step1 == .buffer)
        let step2 = machine.requestBody(bodySize: 40, endOfStream: true, nowMillis: 1_000)
        #expect(step2 == .readAndRoute)
        let body = #"{"model":"gpt-4o-mini","stream":true}"#
        let step3 = machine.route(body: Array(body.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        #expect(step3)
        #expect(!machine.awaitingBody)
        let batches = machine.actions.filter { if case .writeMetadata = $0 { true } else { false } }
        #expect(batches.count == 1)
        let metadata = Self.metadata(machine.actions)
        #expect(metadata["consumer"] == "demo")
        #expect(metadata["team"] == "research")
        #expect(metadata["model"] == "gpt-4o-mini")
        #expect(metadata["route"] == "openai")
        #expect(metadata["attempt_context"] == nil)
        let linked = machine.actions.compactMap { if case .linkAttempts(let context) = $0 { context } else { nil } }
        #expect(linked == [
            AttemptContext(endpoint: .chatCompletions, model: "gpt-4o-mini", stream: true, includeUsage: false, requestBodyBytes: body.utf8.count)
        ])
        #expect(machine.actions.contains { if case .clearRouteCache = $0 { true } else { false } })
        #expect(Self.counts(machine.actions).map(\.1) == [["routed"]])
    }

    @Test func aWrongKeyIsAnsweredWithoutLookingFurther() throws {
        var machine = GatewayStream(gateway: try Self.gateway(Self.config))
        let status = machine.requestHeaders(Self.head(key: "nope"), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 0)
        #expect(status == .stop)
        guard case .localReply(let reply, _)? = machine.actions.last else {
            Issue.record("expected a local reply")
            return
        }
        #expect(reply.status == 401)
        #expect(Self.counts(machine.actions).map(\.1) == [["unauthorized"]])
        #expect(machine.routed == nil)
    }

    @Test func anAnnouncedOversizedBodyIsRefusedBeforeBuffering() throws {
        var machine = GatewayStream(gateway: try Self.gateway(Self.config))
        let step4 = machine.requestHeaders(Self.head(), contentLength: 5_000, endOfStream: false, nowSeconds: 0, nowMillis: 0)
        #expect(step4 == .stop)
        guard case .localReply(let reply, let limits)? = machine.actions.last else {
            Issue.record("expected a local reply")
            return
        }
        #expect(reply.status == 413)
        #expect(limits.contains { $0.name == "x-ratelimit-limit-requests" })
        #expect(Self.metadata(machine.actions)["consumer"] == "demo")
        #expect(!machine.awaitingBody)
    }

    @Test func aGrowingBodyIsRefusedOnceOverTheLimit() throws {
        var machine = GatewayStream(gateway: try Self.gateway(Self.config))
        _ = machine.requestHeaders(Self.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 0)
        let step5 = machine.requestBody(bodySize: 4_097, endOfStream: false, nowMillis: 0)
        #expect(step5 == .rejected)
        let step6 = machine.requestBody(bodySize: 5_000, endOfStream: true, nowMillis: 0)
        #expect(step6 == .pass)
    }

    @Test func aQuotaDenialIsCountedAndAnsweredWith429() throws {
        // Requests per minute of 2 on a key name of this test's own (counters are per gateway here).
        let gateway = try Self.gateway(Self.config)
        _ = Self.routed(gateway)
        _ = Self.routed(gateway)
        var third = GatewayStream(gateway: gateway)
        _ = third.requestHeaders(Self.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        let step7 = third.route(body: Array(#"{"model":"gpt-4o-mini"}"#.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 0)
        #expect(!step7)
        #expect(Self.counts(third.actions).contains { $0.0 == .quotaRejections && $0.1.last == "demo" })
        guard case .localReply(let reply, let limits)? = third.actions.last else {
            Issue.record("expected a local reply")
            return
        }
        #expect(reply.status == 429)
        #expect(limits.contains { $0.name == "retry-after" })
    }

    @Test func theCostHeaderHoldsAnUnstreamedAnswerUntilItsUsageIsKnown() throws {
        var machine = Self.routed(try Self.gateway(Self.config))
        var reported: AttemptReport?
        let status = machine.responseHeaders(
            status: 200, contentLength: 100, bufferLimit: 1 << 20, endOfStream: false, report: { reported })
        #expect(status == .stop)
        #expect(machine.actions.contains { if case .setResponseHeader(let name, _) = $0 { name == "x-ratelimit-limit-requests" } else { false } })
        machine.actions.removeAll()
        let step8 = machine.responseBody(receivedBytes: 10, endOfStream: false, nowMicros: 2_000_000, report: { reported })
        #expect(step8 == .stopAndBuffer)
        reported = AttemptReport(
            usage: TokenUsage(inputTokens: 1_000_000, outputTokens: 500_000), backend: "openai", provider: "openai", responseModel: "m")
        let step9 = machine.responseBody(receivedBytes: 10, endOfStream: true, nowMicros: 2_000_000, report: { reported })
        #expect(step9 == .continue)
        guard case .setResponseHeader(let name, let value)? = machine.actions.last else {
            Issue.record("expected the cost header")
            return
        }
        #expect(name == "x-sluice-cost-usd")
        #expect(value == "0.45")
    }

    @Test func anAnswerTooLargeToHoldGoesWithoutTheCostHeader() throws {
        var machine = Self.routed(try Self.gateway(Self.config))
        let status = machine.responseHeaders(
            status: 200, contentLength: 2 << 20, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        #expect(status == .continue)
    }

    @Test func envoysOwnReplyToARoutedCallBecomesTheClientsErrorShape() throws {
        var machine = Self.routed(try Self.gateway(Self.config))
        machine.localReplyObserved(status: 503, details: "upstream_reset_before_response_started{overflow}", resetImminent: false)
        let step10 = machine.responseHeaders(status: 503, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        #expect(step10 == .continue)
        #expect(machine.actions.contains { if case .setResponseHeader(let name, let value) = $0 { name == "content-type" && value == "application/json" } else { false } })
        machine.actions.removeAll()
        _ = machine.responseBody(receivedBytes: 19, endOfStream: true, nowMicros: 0, report: { nil })
        guard case .drainReceivedResponseBody = machine.actions.first, case .appendResponseBody(let body, let buffered)? = machine.actions.last else {
            Issue.record("expected Envoy's body swapped for the client's error")
            return
        }
        #expect(!buffered)
        #expect(String(decoding: body, as: UTF8.self).contains("\"error\""))
        // The gateway's own replies are left alone.
        var own = Self.routed(try Self.gateway(Self.config))
        own.localReplyObserved(status: 429, details: "sluice_rejected_request", resetImminent: false)
        _ = own.responseHeaders(status: 429, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        #expect(!own.actions.contains { if case .setResponseHeader(let name, _) = $0 { name == "content-type" } else { false } })
    }

    /// A streamed answer metered in images (counted in `outputTokens`) is not a token stream: no
    /// token metric and no time per output token, but its duration and first byte still count.
    @Test func streamsMeteredInOtherUnitsRecordNoTokenMetrics() throws {
        var machine = Self.routed(try Self.gateway(Self.config), body: #"{"model":"gpt-4o-mini","stream":true}"#)
        _ = machine.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        _ = machine.responseBody(receivedBytes: 5, endOfStream: false, nowMicros: 1_050_000, report: { nil })
        machine.actions.removeAll()
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 0, outputTokens: 3), backend: "openai-east", provider: "openai",
            responseModel: "gpt-image-1", unit: .images)
        machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_250_000)
        var recorded: [GatewayHistogram] = []
        for case .record(let histogram, _, _) in machine.actions { recorded.append(histogram) }
        #expect(recorded == [.requestDuration, .timeToFirstToken])
        #expect(!Self.counts(machine.actions).contains { $0.0 == .tokens })
    }

    @Test func completionMetersWhatTheAttemptReportedOnce() throws {
        var machine = Self.routed(try Self.gateway(Self.config), body: #"{"model":"gpt-4o-mini","stream":true}"#)
        _ = machine.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        _ = machine.responseBody(receivedBytes: 5, endOfStream: false, nowMicros: 1_050_000, report: { nil })
        machine.actions.removeAll()
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 12, outputTokens: 5), backend: "openai-east", provider: "openai",
            responseModel: "gpt-4o-mini-2024")
        machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_250_000)
        let labels = ["chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024", "demo"]
        let counts = Self.counts(machine.actions)
        #expect(counts.contains { $0.0 == .tokens && $0.1 == labels + ["input"] && $0.2 == 12 })
        #expect(counts.contains { $0.0 == .tokens && $0.1 == labels + ["output"] && $0.2 == 5 })
        #expect(!counts.contains { $0.0 == .errors })
        var recorded: [(GatewayHistogram, UInt64)] = []
        for case .record(let histogram, _, let value) in machine.actions { recorded.append((histogram, value)) }
        #expect(recorded.contains { $0.0 == .requestDuration && $0.1 == 250 })
        #expect(recorded.contains { $0.0 == .timeToFirstToken && $0.1 == 50 })
        #expect(recorded.contains { $0.0 == .timePerOutputToken && $0.1 == 200_000 / 4 })
        // For access logs, in one batch: the cost and who answered.
        let completion = Self.metadata(machine.actions)
        #expect(completion["cost_usd"] != nil)
        #expect(completion["backend"] == "openai-east" && completion["provider"] == "openai")
        #expect(completion["response_model"] == "gpt-4o-mini-2024")
        #expect(machine.actions.count { if case .writeMetadata = $0 { true } else { false } } == 1)
        #expect(machine.actions.contains { if case .writeTokenMetadata(let usage, .all) = $0 { usage.inputTokens == 12 } else { false } })
        machine.actions.removeAll()
        machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_300_000)
        #expect(machine.actions.isEmpty)
    }

    @Test func aFailedCallCountsAsAnErrorAndWritesNoTokens() throws {
        var machine = Self.routed(try Self.gateway(Self.config))
        _ = machine.responseHeaders(status: 502, contentLength: nil, bufferLimit: 1 << 20, endOfStream: true, report: { nil })
        machine.actions.removeAll()
        machine.streamComplete(report: nil, nowMillis: 2_000, nowMicros: 1_100_000)
        #expect(Self.counts(machine.actions).contains { $0.0 == .errors && $0.1.last == "502" })
        #expect(!machine.actions.contains { if case .writeTokenMetadata = $0 { true } else { false } })
    }

    /// The metadata numbers a `writeTokenMetadata` action writes, by key name.
    static func numbers(_ actions: [GatewayAction]) -> [String: Double] {
        var out: [String: Double] = [:]
        for case .writeTokenMetadata(let usage, let keys) in actions {
            usage.forEachMetadataNumber(in: keys) { out[$0.name.description] = $1 }
        }
        return out
    }

    @Test func onlyTheConfiguredMetadataKeysAreWritten() throws {
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 12, outputTokens: 5, searchUnits: 2), backend: "b", provider: "openai",
            responseModel: "m")
        func complete(_ keys: String?) throws -> (strings: [String: String], numbers: [String: Double], batches: Int) {
            let setting = keys.map { #","metadata_keys":\#($0)"# } ?? ""
            let config = #"""
                {"api_keys":[{"name":"demo","key":"sk-demo","team":"research"}],
                 "models":[{"id":"gpt-4o-mini","owned_by":"openai","route":"openai"}],
                 "prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}}\#(setting)}
                """#
            var machine = GatewayStream(gateway: try Self.gateway(config))
            _ = machine.requestHeaders(Self.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
            _ = machine.route(body: Array(#"{"model":"gpt-4o-mini"}"#.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
            _ = machine.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: true, report: { report })
            machine.streamComplete(report: report, nowMillis: 2_000, nowMicros: 1_250_000)
            let batches = machine.actions.count { if case .writeMetadata = $0 { true } else { false } }
            return (Self.metadata(machine.actions), Self.numbers(machine.actions), batches)
        }
        // Without the setting, every key (hand-written Envoy configs rely on it).
        let all = try complete(nil)
        #expect(Set(all.strings.keys) == ["consumer", "team", "model", "route", "cost_usd", "backend", "provider", "response_model"])
        #expect(all.numbers == ["input_tokens": 12, "output_tokens": 5, "cached_input_tokens": 0, "total_tokens": 17, "search_units": 2])
        #expect(all.batches == 2)
        // What sluiced's access log prints.
        let logged = try complete(#"["consumer","model","route","backend","input_tokens","output_tokens","cost_usd"]"#)
        #expect(Set(logged.strings.keys) == ["consumer", "model", "route", "cost_usd", "backend"])
        #expect(logged.numbers == ["input_tokens": 12, "output_tokens": 5])
        // A batch left empty is not sent; no key at all, no call.
        let tokensOnly = try complete(#"["total_tokens"]"#)
        #expect(tokensOnly.strings.isEmpty && tokensOnly.batches == 0 && tokensOnly.numbers == ["total_tokens": 17])
        let none = try complete("[]")
        #expect(none.strings.isEmpty && none.batches == 0 && none.numbers.isEmpty)
        #expect(!(try complete("[]")).numbers.keys.contains("search_units"))
    }

    @Test func anUnknownMetadataKeyIsAPreciseConfigError() {
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(Array(#"{"metadata_keys":["consumer","tokens"]}"#.utf8)) }
        do {
            _ = try GatewayConfig.parse(Array(#"{"metadata_keys":["consumer","tokens"]}"#.utf8))
        } catch {
            #expect(error.path == "metadata_keys[1]")
            #expect(error.problem.hasPrefix("unknown metadata key 'tokens'; expected one of: consumer, team, model, route, cost_usd"))
        }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(Array(#"{"metadata_keys":"consumer"}"#.utf8)) }
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(Array(#"{"metadata_keys":[1]}"#.utf8)) }
    }
}

@Suite struct GatewayStreamUsageRecordTests {
    @Test func aRoutedStreamLeavesOneRecordOnlyWhenAsked() throws {
        let gateway = try GatewayStreamTests.gateway(GatewayStreamTests.config)
        var plain = GatewayStreamTests.routed(gateway)
        plain.streamComplete(report: nil, nowMillis: 2_000, nowMicros: 2_000_000)
        #expect(plain.completedUsageRecord == nil)

        var machine = GatewayStream(gateway: gateway)
        machine.usageRecordRequest = ("req-42", 900_000)
        _ = machine.requestHeaders(GatewayStreamTests.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        _ = machine.route(body: Array(#"{"model":"gpt-4o-mini","stream":true}"#.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        _ = machine.responseHeaders(status: 200, contentLength: nil, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
        _ = machine.responseBody(receivedBytes: 10, endOfStream: false, nowMicros: 1_250_000, report: { nil })
        let report = AttemptReport(
            usage: TokenUsage(inputTokens: 1000, outputTokens: 2000, cachedInputTokens: 100), backend: "openai-east",
            provider: "openai", responseModel: "gpt-4o-mini-2024")
        machine.streamComplete(report: report, nowMillis: 3_000, nowMicros: 3_000_000)
        let record = try #require(machine.completedUsageRecord)
        #expect(record.id == "req-42")
        #expect(record.timeMillis == 900)
        #expect(record.key == "demo" && record.team == "research" && record.model == "gpt-4o-mini")
        #expect(record.provider == "openai" && record.backend == "openai-east")
        #expect(record.status == 200 && record.stream)
        #expect(record.inputTokens == 1000 && record.cachedInputTokens == 100 && record.outputTokens == 2000)
        // 1000 × $0.15/M + 2000 × $0.60/M = $0.00135 (cached tokens priced as input: no cached price set)
        #expect(record.costMicros == gateway.config.prices.cost(usage: report.usage, model: "gpt-4o-mini"))
        #expect(record.durationMillis == 2_100 && record.ttftMillis == 350)
        #expect(machine.usageRecordRequest == nil)
    }
}

@Suite struct GatewayStreamRejectedUsageRecordTests {
    @Test func aQuotaDenialLeavesARecordWithItsStatusAndNoTokens() throws {
        let gateway = try GatewayStreamTests.gateway(GatewayStreamTests.config)
        // The demo key allows 2 requests a minute: the third is refused with 429.
        for _ in 0..<2 { _ = GatewayStreamTests.routed(gateway) }
        var machine = GatewayStream(gateway: gateway)
        machine.usageRecordRequest = ("req-429", 1_000_000)
        _ = machine.requestHeaders(GatewayStreamTests.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        let routed = machine.route(body: Array(#"{"model":"gpt-4o-mini"}"#.utf8), header: { _ in nil }, nowMillis: 1_040, nowMicros: 1_040_000)
        #expect(!routed)
        let record = try #require(machine.completedUsageRecord)
        #expect(record.id == "req-429" && record.status == 429 && record.model == "gpt-4o-mini" && record.key == "demo")
        #expect(record.inputTokens == 0 && record.outputTokens == 0 && record.costMicros == 0 && record.durationMillis == 40)
    }

    @Test func aBadBodyLeavesARecordAndAnUnknownKeyDoesNot() throws {
        let gateway = try GatewayStreamTests.gateway(GatewayStreamTests.config)
        var machine = GatewayStream(gateway: gateway)
        machine.usageRecordRequest = ("req-400", 1_000_000)
        _ = machine.requestHeaders(GatewayStreamTests.head(), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        let routed = machine.route(body: Array("{".utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
        #expect(!routed)
        #expect(machine.completedUsageRecord?.status == 400)

        var stranger = GatewayStream(gateway: gateway)
        stranger.usageRecordRequest = ("req-401", 1_000_000)
        _ = stranger.requestHeaders(GatewayStreamTests.head(key: "sk-nobody"), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
        #expect(stranger.completedUsageRecord == nil)
    }
}
