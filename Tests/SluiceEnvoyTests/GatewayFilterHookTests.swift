// Drives the real exported hooks through the fake Envoy (SluiceTestHost).
import SluiceCore
import SluiceEnvoy
import SluiceTestHost
import Testing

let demoConfig = #"""
    {"api_keys":[{"name":"demo","key":"sk-sluice-demo"}],
     "models":[{"id":"gpt-4o-mini","owned_by":"openai","route":"openai"}],
     "routes":[{"name":"anthropic","model_prefix":"claude-"},
               {"name":"tenant-a","models":["gpt-4o"],"headers":{"x-tenant":"a"}}],
     "max_request_bytes":4096}
    """#

@Suite struct GatewayFilterHookTests {
    @Test func programInitReturnsTheABIVersionOfEnvoy140() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: "{}")
        #expect(chain.abiVersion == "v0.2.0")
        #expect(chain.abiVersion == SLUICE_ENVOY_ABI_VERSION)
    }

    @Test func definesItsCounterAtConfigTime() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        #expect(chain.loaded)
        #expect(chain.config.metrics.map(\.name) == [
            "requests_total", "gen_ai_client_token_usage", "gen_ai_client_tokens_total", "gen_ai_server_request_duration_ms",
            "gen_ai_server_time_to_first_token_ms", "gen_ai_server_time_per_output_token_us", "gen_ai_client_errors_total",
            "quota_rejections_total",
        ])
        #expect(chain.config.metrics.first?.labelNames == ["outcome"])
        #expect(chain.config.metrics[1].labelNames.last == "gen_ai_token_type")
    }

    @Test func answersModelsLocally() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-sluice-demo")]))
        #expect(driver.requestHeaders(endOfStream: true) == 1)  // StopIteration
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == 200)
        #expect(reply.headers["content-type"] == "application/json")
        #expect(reply.bodyString.contains(#""id":"gpt-4o-mini""#))
        #expect(reply.details == "sluice_models_listed")
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["models_listed"]) == 1)
    }

    @Test func refusesMissingKeyWith401() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions")]))
        #expect(driver.requestHeaders() == 1)
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == 401)
        #expect(reply.bodyString.contains(#""code":"missing_api_key""#))
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["unauthorized"]) == 1)
    }

    @Test func forwardsAndStripsClientCredentials() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ("x-api-key", "sk-sluice-demo"), ("content-type", "application/json"),
            ]))
        // Headers wait for the body: the route depends on its `model`.
        #expect(driver.requestHeaders() == 1)  // StopIteration
        #expect(driver.stream.localReply == nil)
        #expect(driver.stream.requestHeaders["authorization"] == nil)
        #expect(driver.stream.requestHeaders["x-api-key"] == nil)
        #expect(driver.stream.requestHeaders["content-type"] == "application/json")
        let body = Array(#"{"messages":[{"role":"user","content":"hi"}],"model":"gpt-4o-mini","stream":true}"#.utf8)
        #expect(driver.requestBody(Array(body[0..<20]), endOfStream: false) == 1)  // StopIterationAndBuffer
        #expect(driver.requestBody(Array(body[20...]), endOfStream: true) == 0)
        #expect(driver.forwardedRequestBody == body)
        #expect(driver.stream.requestHeaders["x-sluice-route"] == "openai")
        #expect(driver.stream.routeCacheClears == 1)
        #expect(driver.stream.dynamicMetadata["sluice"]?["consumer"] == .string("demo"))
        #expect(driver.stream.dynamicMetadata["sluice"]?["model"] == .string("gpt-4o-mini"))
        #expect(driver.stream.dynamicMetadata["sluice"]?["route"] == .string("openai"))
        #expect(driver.stream.dynamicMetadata["sluice"]?["attempt_context"] == nil)
        #expect(driver.stream.linkedContext
            == AttemptContext(endpoint: .chatCompletions, model: "gpt-4o-mini", stream: true, includeUsage: false, requestBodyBytes: body.count))
        #expect(driver.stream.metadataBatches == 1)  // consumer, model and route in one call
        #expect(driver.responseHeaders([(":status", "200")]) == 0)
        driver.streamComplete()
        driver.destroy()
        #expect(driver.stream.callbacksAfterDestroy == 0)
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["routed"]) == 1)
    }

    func post(_ chain: FakeHTTPFilterChain, path: String = "/v1/chat/completions", body: String, extra: [(String, String)] = [])
        throws -> FakeHTTPStreamDriver
    {
        let driver = try #require(
            chain.newStream([(":method", "POST"), (":path", path), ("authorization", "Bearer sk-sluice-demo")] + extra))
        #expect(driver.requestHeaders() == 1)
        driver.requestBody(Array(body.utf8), endOfStream: true)
        return driver
    }

    @Test func routesByPrefixAndHeaderRules() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let claude = try post(chain, body: #"{"model":"claude-sonnet-4-5","max_tokens":5}"#)
        #expect(claude.stream.requestHeaders["x-sluice-route"] == "anthropic")
        let tenant = try post(chain, body: #"{"model":"gpt-4o"}"#, extra: [("x-tenant", "a")])
        #expect(tenant.stream.requestHeaders["x-sluice-route"] == "tenant-a")
        let otherTenant = try post(chain, body: #"{"model":"gpt-4o"}"#, extra: [("x-tenant", "b")])
        #expect(otherTenant.stream.localReply?.status == 404)
        #expect(otherTenant.stream.localReply?.bodyString.contains("model_not_found") == true)
    }

    @Test(arguments: [
        (#"{"model":"nope"}"#, 404, "model_not_found"),
        (#"{"messages":[]}"#, 400, "missing_model"),
        (#"{"model":7}"#, 400, "invalid_type"),
        (#"{"model":"gpt-4o-mini","stream":"yes"}"#, 400, "invalid_type"),
        (#"{"model":"gpt-4o-mini""#, 400, "invalid_json"),
        (#"[1]"#, 400, "invalid_json"),
        ("", 400, "invalid_json"),
    ] as [(String, UInt32, String)])
    func badBodiesGetOpenAIErrors(body: String, status: UInt32, code: String) throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try post(chain, body: body)
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == status)
        #expect(reply.bodyString.contains(#""code":"\#(code)""#))
        #expect(driver.forwardedRequestBody.isEmpty)
    }

    @Test func anthropicClientsGetAnthropicShapedBodyErrors() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try post(chain, path: "/v1/messages", body: #"{"model":"unknown"}"#)
        #expect(driver.stream.localReply?.status == 404)
        #expect(driver.stream.localReply?.bodyString.contains(#""type":"not_found_error""#) == true)
    }

    @Test func oversizedBodiesGet413() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let big = #"{"model":"gpt-4o-mini","input":""# + String(repeating: "x", count: 5000) + #""}"#
        let driver = try post(chain, path: "/v1/embeddings", body: big)
        #expect(driver.stream.localReply?.status == 413)
        // Declared up front: refused before any body arrives.
        let declared = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/embeddings"), ("authorization", "Bearer sk-sluice-demo"),
                ("content-length", "999999"),
            ]))
        #expect(declared.requestHeaders() == 1)
        #expect(declared.stream.localReply?.status == 413)
        #expect(declared.stream.bufferLimit >= 4096)
    }

    @Test func requestWithoutBodyIsRefused() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo")]))
        #expect(driver.requestHeaders(endOfStream: true) == 1)
        #expect(driver.stream.localReply?.status == 400)
    }

    /// Another filter holds the link's filter-state key: the request is answered 500 in the
    /// client's shape instead of going upstream without its translation and credentials, and its
    /// reservation is released.
    @Test func aRequestThatCannotBeLinkedIsAnsweredNotForwarded() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try #require(
            chain.newStream([(":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo")]))
        driver.stream.readOnlyFilterStateKeys = ["sluice.filter_link"]
        #expect(driver.requestHeaders() == 1)
        #expect(driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true) == 3)  // StopIterationNoBuffer
        let reply = try #require(driver.stream.localReply)
        #expect(reply.status == 500)
        #expect(String(decoding: reply.body, as: UTF8.self).contains("gateway_misconfigured"))
        #expect(driver.stream.linkedContext == nil)
        driver.streamComplete()
        driver.destroy()
        chain.flushCounters()
        #expect(chain.config.value("requests_total", labels: ["rejected"]) == 1)
    }

    @Test func genAIMetricsRecordedAtStreamComplete() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try post(chain, body: #"{"model":"gpt-4o-mini","stream":true}"#)
        // What the upstream filter leaves in the link for its attempt.
        driver.stream.setAttemptReport(inputTokens: 12, outputTokens: 5, responseModel: "gpt-4o-mini-2024-07-18")
        driver.responseHeaders([(":status", "200")])
        driver.responseBody(Array("data: x\n\n".utf8), endOfStream: true)
        driver.streamComplete()
        let labels = ["chat", "openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18", "demo"]
        chain.flushCounters()
        #expect(chain.config.value("gen_ai_client_tokens_total", labels: labels + ["input"]) == 12)
        chain.flushCounters()
        #expect(chain.config.value("gen_ai_client_tokens_total", labels: labels + ["output"]) == 5)
        let usage = try #require(chain.config.metrics.first { $0.name == "gen_ai_client_token_usage" })
        #expect(usage.samples[labels + ["output"]] == [5])
        let ttft = try #require(chain.config.metrics.first { $0.name == "gen_ai_server_time_to_first_token_ms" })
        #expect(ttft.samples[labels]?.count == 1)
        // A second completion does not count twice.
        driver.streamComplete()
        chain.flushCounters()
        #expect(chain.config.value("gen_ai_client_tokens_total", labels: labels + ["input"]) == 12)
    }

    @Test func failedCallsCountAsErrors() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let driver = try post(chain, body: #"{"model":"gpt-4o-mini"}"#)
        driver.responseHeaders([(":status", "429")])
        driver.streamComplete()
        chain.flushCounters()
        #expect(chain.config.value("gen_ai_client_errors_total", labels: ["chat", "gpt-4o-mini", "demo", "429"]) == 1)
    }

    @Test func invalidConfigIsRefusedWithTheFieldNamed() {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: #"{"api_keys":[{"name":"demo","kee":"x"}]}"#)
        #expect(!chain.loaded)
        #expect(!FakeLog.lines(containing: "api_keys[0]: needs one of 'key' or 'key_sha256'").isEmpty)
    }

    @Test func unknownFilterNameIsRefused() {
        let chain = FakeHTTPFilterChain(filterName: "not-sluice", filterConfig: "{}")
        #expect(!chain.loaded)
        #expect(!FakeLog.lines(containing: "unknown filter_name 'not-sluice'").isEmpty)
    }

    @Test func garbageConfigBytesAreRefusedNotFatal() async {
        // In an exit test: a trap fails this test alone instead of the whole suite.
        await #expect(processExitsWith: .success) { GatewayFilterHookTests.garbageConfigBytesAreRefusedNotFatalRun() }
    }

    static func garbageConfigBytesAreRefusedNotFatalRun() {
        for config in ["", "{", "\u{0}", "null", "[1,2]", String(repeating: "[", count: 10_000)] {
            let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
            #expect(!chain.loaded)
        }
    }

    /// Hostile and odd header values: no trap, always a well-formed decision.
    @Test func oddHeadersNeverCrash() async {
        // In an exit test: a trap fails this test alone instead of the whole suite.
        await #expect(processExitsWith: .success) { try GatewayFilterHookTests.oddHeadersNeverCrashRun() }
    }

    static func oddHeadersNeverCrashRun() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: demoConfig)
        let values = ["", "Bearer", "Bearer ", "Bearer \u{0}", String(repeating: "B", count: 100_000), "Bearer \u{FFFD}\u{FFFD}", "\r\n"]
        for value in values {
            let driver = try #require(chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", value)]))
            #expect(driver.requestHeaders() == 1)
            #expect(driver.stream.localReply?.status == 401)
        }
        // No :method / :path at all.
        let bare = try #require(chain.newStream([]))
        #expect(bare.requestHeaders() == 1)
        #expect(bare.stream.localReply?.status == 401)
    }

    // MARK: - Rate-limit headers on local answers, cost header, JWT identity

    static let limitedConfig = #"""
        {"api_keys":[{"name":"demo","key":"sk-sluice-demo","limits":{"requests_per_minute":60}}],
         "models":[{"id":"gpt-4o-mini","owned_by":"openai","route":"openai"}],
         "prices":{"gpt-4o-mini":{"input":0.15,"output":0.6}},
         "response_cost_header":"x-sluice-cost-usd",
         "jwt":{"payload_header":"x-sluice-jwt-payload","payload_metadata_key":"jwt_payload","team_claim":"team"}}
        """#

    @Test func localAnswersCarryRateLimitHeaders() throws {
        // A key name of its own: quota counters are process-wide per scope (see the next test).
        let config = Self.limitedConfig.split(separator: #""name":"demo""#).joined(separator: #""name":"local-answers""#)
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
        let models = try #require(
            chain.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-sluice-demo")]))
        models.requestHeaders(endOfStream: true)
        let reply = try #require(models.stream.localReply)
        #expect(reply.status == 200)
        #expect(reply.headers["x-ratelimit-limit-requests"] == "60")
        #expect(reply.headers["x-ratelimit-remaining-requests"] == "60")
        // A request refused after authentication (unknown model) carries them too.
        let unknown = try post(chain, body: #"{"model":"nope"}"#)
        #expect(unknown.stream.localReply?.status == 404)
        #expect(unknown.stream.localReply?.headers["x-ratelimit-limit-requests"] == "60")
    }

    @Test func aNewConfigTakesOverTheQuotaCounters() throws {
        // As after an xDS update of the listener: Envoy builds a second filter config.
        let config = #"{"api_keys":[{"name":"carry-over","key":"sk-carry","limits":{"requests_per_minute":5}}],"models":[{"id":"m","route":"r"}]}"#
        let first = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
        for _ in 0..<2 {
            let driver = try #require(
                first.newStream([(":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-carry")]))
            driver.requestHeaders()
            driver.requestBody(Array(#"{"model":"m"}"#.utf8), endOfStream: true)
            #expect(driver.stream.localReply == nil)
            driver.responseHeaders([(":status", "200")], endOfStream: true)
            driver.streamComplete()  // settled: a request that went upstream counts
        }
        let check = try #require(
            first.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-carry")]))
        check.requestHeaders(endOfStream: true)
        #expect(check.stream.localReply?.headers["x-ratelimit-remaining-requests"] == "3")
        let second = FakeHTTPFilterChain(filterName: "sluice", filterConfig: config)
        let models = try #require(
            second.newStream([(":method", "GET"), (":path", "/v1/models"), ("authorization", "Bearer sk-carry")]))
        models.requestHeaders(endOfStream: true)
        #expect(models.stream.localReply?.headers["x-ratelimit-remaining-requests"] == "3")
    }

    @Test func costHeaderWaitsForTheBodyOfAnUnstreamedResponse() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: Self.limitedConfig)
        let driver = try post(chain, body: #"{"model":"gpt-4o-mini"}"#)
        #expect(driver.responseHeaders([(":status", "200")]) == 1)  // held: the usage comes with the body
        #expect(driver.responseBody(Array("{\"id\":".utf8), endOfStream: false) == 1)  // buffered
        // The upstream filter publishes the usage before the last chunk reaches this filter.
        driver.stream.setAttemptReport(inputTokens: 1_000_000, outputTokens: 500_000)
        #expect(driver.responseBody(Array("1}".utf8), endOfStream: true) == 0)
        #expect(driver.stream.responseHeaders["x-sluice-cost-usd"] == "0.45")
        #expect(driver.forwardedResponseBody == Array("{\"id\":1}".utf8))
        driver.streamComplete()
    }

    @Test func streamsEndWithTheCostAsAnSSEComment() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: Self.limitedConfig)
        let driver = try post(chain, body: #"{"model":"gpt-4o-mini","stream":true}"#)
        #expect(driver.responseHeaders([(":status", "200")]) == 0)
        #expect(driver.stream.responseHeaders["x-sluice-cost-usd"] == nil)
        driver.responseBody(Array("data: {}\n\n".utf8), endOfStream: false)
        driver.stream.setAttemptReport(inputTokens: 100, outputTokens: 10)
        driver.responseBody(Array("data: [DONE]\n\n".utf8), endOfStream: true)
        let text = String(decoding: driver.forwardedResponseBody, as: UTF8.self)
        #expect(text == "data: {}\n\ndata: [DONE]\n\n: x-sluice-cost-usd=0.000021\n\n")
        driver.streamComplete()
    }

    /// base64url of a JSON payload, as jwt_authn's forward_payload_header carries it.
    static func jwtPayload(_ json: String) -> String { Base64URL.encode(Array(json.utf8)) }

    @Test func verifiedJWTPayloadNamesTheConsumerAndNeverGoesUpstream() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: Self.limitedConfig)
        // A client's forged copy first, then the one jwt_authn appended after verifying.
        let driver = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"),
                ("x-sluice-jwt-payload", Self.jwtPayload(#"{"sub":"mallory","team":"admins"}"#)),
                ("x-sluice-jwt-payload", Self.jwtPayload(#"{"sub":"alice","team":"research"}"#)),
            ]))
        driver.stream.dynamicMetadata["envoy.filters.http.jwt_authn"] = ["jwt_payload": .structure]
        #expect(driver.requestHeaders() == 1)
        #expect(driver.stream.localReply == nil)
        // The consumer is written with the route, in the same metadata batch.
        driver.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
        #expect(driver.stream.dynamicMetadata["sluice"]?["consumer"] == .string("jwt:alice"))
        #expect(driver.stream.dynamicMetadata["sluice"]?["team"] == .string("research"))
        #expect(driver.stream.requestHeaders["x-sluice-jwt-payload"] == nil)
    }

    @Test func anUnverifiedPayloadHeaderIsIgnoredAndRemoved() throws {
        let chain = FakeHTTPFilterChain(filterName: "sluice", filterConfig: Self.limitedConfig)
        let forged = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"),
                ("x-sluice-jwt-payload", Self.jwtPayload(#"{"sub":"mallory"}"#)),
            ]))
        #expect(forged.requestHeaders() == 1)
        #expect(forged.stream.localReply?.status == 401)
        #expect(forged.stream.requestHeaders["x-sluice-jwt-payload"] == nil)
        // With a key as well, the key decides and the forged header still goes nowhere.
        let keyed = try #require(
            chain.newStream([
                (":method", "POST"), (":path", "/v1/chat/completions"), ("authorization", "Bearer sk-sluice-demo"),
                ("x-sluice-jwt-payload", Self.jwtPayload(#"{"sub":"mallory"}"#)),
            ]))
        keyed.requestHeaders()
        keyed.requestBody(Array(#"{"model":"gpt-4o-mini"}"#.utf8), endOfStream: true)
        #expect(keyed.stream.dynamicMetadata["sluice"]?["consumer"] == .string("demo"))
        #expect(keyed.stream.requestHeaders["x-sluice-jwt-payload"] == nil)
    }
}
