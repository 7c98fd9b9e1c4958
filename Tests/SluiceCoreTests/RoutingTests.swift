import Testing

@testable import SluiceCore

@Suite struct RoutingTests {
    @Test func requestSummaryReadsRoutingFields() throws {
        let body = Array(
            #"{"messages":[{"model":"inner"}],"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"max_tokens":64}"#
                .utf8)
        let summary = try RequestSummary.read(body, endpoint: .chatCompletions)
        #expect(summary == RequestSummary(model: "gpt-4o", stream: true, includeUsage: true, maxTokens: 64))
        let nulls = try RequestSummary.read(Array(#"{"model":"m","stream":null,"max_completion_tokens":9}"#.utf8), endpoint: .chatCompletions)
        #expect(nulls == RequestSummary(model: "m", stream: false, maxTokens: 9))
    }

    @Test(arguments: [
        (#"{"model":"m","model":"n"}"#, "invalid_json"),
        (#"{"model":"m","max_tokens":-1}"#, "invalid_value"),
        (#"{"model":"m","max_tokens":"9"}"#, "invalid_value"),
        (#"{"model":"m","stream_options":3}"#, "invalid_type"),
        (#"{"model":""}"#, "invalid_type"),
        (#""x""#, "invalid_json"),
    ])
    func requestSummaryErrors(body: String, code: String) {
        #expect(throws: GatewayError.self) { try RequestSummary.read(Array(body.utf8), endpoint: .chatCompletions) }
        do {
            _ = try RequestSummary.read(Array(body.utf8), endpoint: .chatCompletions)
        } catch {
            #expect(error.code == code)
            #expect(error.status == 400)
        }
    }

    @Test func routerOrderExactPrefixHeaders() {
        let router = ModelRouter([
            RouteRule(name: "vip", models: ["gpt-4o"], headers: [("x-tier", "vip")]),
            RouteRule(name: "openai", models: ["gpt-4o", "gpt-4o-mini"]),
            RouteRule(name: "anthropic", modelPrefix: "claude-"),
            RouteRule(name: "catch-all", modelPrefix: ""),
        ])
        #expect(router.route(model: "gpt-4o") { _ in nil } == "openai")
        #expect(router.route(model: "gpt-4o") { $0 == "x-tier" ? "vip" : nil } == "vip")
        #expect(router.route(model: "claude-opus-4") { _ in nil } == "anthropic")
        #expect(router.route(model: "llama") { _ in nil } == "catch-all")
        #expect(router.headerNames == ["x-tier"])
        #expect(ModelRouter([]).route(model: "x") { _ in nil } == nil)
    }

    @Test func configRoutesParse() throws {
        let config = try GatewayConfig.parse(Array("""
            {"models":[{"id":"a","route":"r1"}],
             "routes":[{"name":"r2","model_prefix":"claude-","headers":{"X-Tenant":"t"}}],
             "max_request_bytes":2048}
            """.utf8))
        #expect(config.routingRules == [
            RouteRule(name: "r1", models: ["a"]), RouteRule(name: "r2", modelPrefix: "claude-", headers: [("x-tenant", "t")]),
        ])
        #expect(config.maxRequestBytes == 2048)
    }

    @Test(arguments: [
        (#"{"routes":[{"name":"r"}]}"#, #"routes[0]: needs 'models' or 'model_prefix' ("" matches every model)"#),
        (#"{"routes":[{"name":"bad name","models":["a"]}]}"#, "routes[0].name: must be 1-128 characters of letters, digits, '-', '_' or '.'"),
        (#"{"routes":[{"name":"r","models":["a"],"headers":{"x":1}}]}"#, "routes[0].headers.x: expected a string, got number"),
        (#"{"max_request_bytes":10}"#, "max_request_bytes: must be between 1024 and 1073741824, got 10"),
    ])
    func configRouteErrors(json: String, message: String) {
        do {
            _ = try GatewayConfig.parse(Array(json.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == message)
        }
    }
}

@Suite struct BackendConfigTests {
    @Test func parsesEverySection() throws {
        let config = try BackendConfig.parse(Array("""
            {"backend":"bedrock-east","schema":"bedrock_converse",
             "aws":{"region":"us-east-1","access_key_id":{"secret":"aws-id"},"secret_access_key":{"secret":"aws-key","sds_path":"/s/k.yaml"}},
             "model_overrides":{"claude":"anthropic.claude-3-haiku-20240307-v1:0"},"default_max_tokens":1024,"host":"bedrock-runtime.us-east-1.amazonaws.com"}
            """.utf8))
        #expect(config.schema == .bedrockConverse)
        #expect(config.aws?.region == "us-east-1")
        #expect(config.aws?.secretAccessKey == .secret(name: "aws-key", sdsPath: "/s/k.yaml"))
        #expect(config.upstreamModel(for: "claude") == "anthropic.claude-3-haiku-20240307-v1:0")
        #expect(config.upstreamModel(for: "other") == "other")
        #expect(config.defaultMaxTokens == 1024)
        #expect(CredentialSource.secret(name: "k", sdsPath: "/s/k.yaml").configSourceJSON == #"{"path_config_source":{"path":"/s/k.yaml"},"resource_api_version":"V3"}"#)
    }

    @Test(arguments: [
        (#"{"backend":"x","schema":"voyage"}"#, "schema: unknown schema 'voyage'; expected one of: openai, azure_openai, anthropic, bedrock_converse, gemini, vertex_gemini, vertex_anthropic, bedrock_anthropic, cohere"),
        (#"{"backend":"x","schema":"anthropic"}"#, "credential: is required for schema anthropic"),
        (#"{"backend":"x","schema":"azure_openai","credential":{"value":"k"}}"#, "azure: is required for schema azure_openai (api_version)"),
        (#"{"backend":"x","schema":"openai","credential":{"secret":"a","value":"b"}}"#, "credential: has both 'secret' and 'value'; give only one"),
        (#"{"backend":"x","schema":"openai","path_prefix":"v1/"}"#, "path_prefix: must start with '/' and not end with '/', e.g. \"/openai\""),
        (#"{"backend":"x","schema":"openai","timeout":3}"#, "timeout: unknown field"),
        (#"{"backend":"x","schema":"anthropic","credential":{"value":"k"},"responses_api":false}"#,
         "responses_api: applies only to the openai schema (OpenAI-compatible servers)"),
    ])
    func errorsNameTheField(json: String, message: String) {
        do {
            _ = try BackendConfig.parse(Array(json.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == message)
        }
    }
}

@Suite struct ResponsesWithoutTheResponsesAPITests {
    /// A server without `/v1/responses` gets a Responses client's request as chat completions, through the hub.
    @Test func aServerWithoutResponsesGetsChatCompletions() throws {
        let backend = try BackendConfig.parse(Array(#"{"backend":"sglang","schema":"openai","responses_api":false}"#.utf8))
        #expect(!backend.servesResponses)
        var exchange = UpstreamExchange(
            backend: backend, clientAPI: .openAI, endpoint: .responses, requestModel: "qwen", stream: false,
            includeUsage: false, created: 1_764_979_200, requestID: "r1")
        #expect(!exchange.sameSchema)
        let body = try exchange.translateRequest(Array(#"{"model":"qwen","instructions":"Be brief.","input":"hi"}"#.utf8))
        let hub = try JSONParser.parse(body)
        #expect(hub["messages"] == [["role": "system", "content": "Be brief."], ["role": "user", "content": "hi"]])
        #expect(try exchange.requestPlan().path == "/v1/chat/completions")
        let answer = try exchange.translateResponse(Array(
            #"{"id":"c1","object":"chat.completion","created":1,"model":"qwen","choices":[{"index":0,"message":{"role":"assistant","content":"hello"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}"#.utf8))
        let response = try JSONParser.parse(answer.body)
        #expect(response["object"] == "response" && response["instructions"] == "Be brief.")
        #expect(answer.usage.outputTokens == 1)
        // The default serves Responses: the body passes through to /v1/responses.
        let native = UpstreamExchange(
            backend: BackendConfig(name: "vllm", schema: .openAI), clientAPI: .openAI, endpoint: .responses, requestModel: "qwen",
            stream: false, includeUsage: false, created: 1_764_979_200, requestID: "r2")
        #expect(native.sameSchema)
    }
}

@Suite struct UpstreamConfigTests {
    @Test func singleOrSeveralBackends() throws {
        let one = try UpstreamConfig.parse(Array(#"{"backend":"a","schema":"openai"}"#.utf8))
        #expect(one.backend(named: nil)?.name == "a")
        let two = try UpstreamConfig.parse(Array(#"{"backends":[{"backend":"a","schema":"openai"},{"backend":"b","schema":"openai"}]}"#.utf8))
        #expect(two.backend(named: "b")?.name == "b")
        #expect(two.backend(named: nil) == nil)
        #expect(two.backend(named: "c") == nil)
    }

    @Test(arguments: [
        (#"{"backends":[]}"#, "backends: must not be empty"),
        (#"{"backends":[{"backend":"a","schema":"openai"},{"backend":"a","schema":"openai"}]}"#, "backends[1].backend: duplicate backend name 'a'"),
        (#"{"backends":[{"backend":"a","schema":"anthropic"}]}"#, "backends[0].credential: is required for schema anthropic"),
    ])
    func errors(json: String, message: String) {
        do {
            _ = try UpstreamConfig.parse(Array(json.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message == message)
        }
    }
}

@Suite struct UpstreamExchangeTests {
    func exchange(_ schema: BackendSchema, endpoint: Endpoint = .chatCompletions, model: String = "gpt-4o") -> UpstreamExchange {
        var backend = BackendConfig(name: "b", schema: schema, credential: .value("k"))
        backend.azureAPIVersion = "2024-10-21"
        backend.modelOverrides = ["gpt-4o": "gpt-4o-2024-08-06"]
        return UpstreamExchange(
            backend: backend, clientAPI: endpoint.clientAPI, endpoint: endpoint, requestModel: model, stream: false,
            includeUsage: false, created: 1, requestID: "r")
    }

    @Test func openAIPlanRewritesOnlyTheModel() throws {
        var openAI = exchange(.openAI)
        let plan = try openAI.requestPlan()
        #expect(plan.path == "/v1/chat/completions")
        #expect(plan.credentialHeader?.name == "authorization" && plan.credentialHeader?.prefix == "Bearer ")
        #expect(plan.rewritesBody)
        let body = Array(#"{ "model" : "gpt-4o", "messages": [{"role":"user","content":"\u00e9"}] }"#.utf8)
        #expect(try openAI.translateRequest(body) == Array(#"{ "model" : "gpt-4o-2024-08-06", "messages": [{"role":"user","content":"\u00e9"}] }"#.utf8))
        #expect(try !exchange(.openAI, model: "other").requestPlan().rewritesBody)
        #expect(openAI.responseMode(status: 200, contentType: "application/json") == .passthroughMetered)
        #expect(openAI.responseMode(status: 429, contentType: "application/json") == .passthrough)
    }

    @Test func azurePlanUsesTheDeploymentPath() throws {
        let plan = try exchange(.azureOpenAI, endpoint: .embeddings).requestPlan()
        #expect(plan.path == "/openai/deployments/gpt-4o-2024-08-06/embeddings?api-version=2024-10-21")
        #expect(plan.credentialHeader?.name == "api-key")
        #expect(!plan.rewritesBody)
    }

    @Test func anthropicPassthroughForAnthropicClients() throws {
        let anthropic = exchange(.anthropic, endpoint: .anthropicMessages, model: "claude")
        let plan = try anthropic.requestPlan()
        #expect(plan.path == "/v1/messages")
        #expect(plan.setHeaders.contains { $0.name == "anthropic-version" })
        #expect(!plan.rewritesBody)
        #expect(anthropic.responseMode(status: 500, contentType: nil) == .passthrough)
        #expect(anthropic.responseMode(status: 200, contentType: nil) == .passthroughMetered)
    }

    @Test func percentEncoding() {
        #expect(PercentEncoding.pathSegment("anthropic.claude-3:0/x y") == "anthropic.claude-3%3A0%2Fx%20y")
    }
}

@Suite struct OpenAIHubTests {
    @Test func anAnthropicRequestForAnOpenAIBackendLeavesOutHubExtensionsAndForcesUsage() throws {
        let body = try AnthropicFixtures.bytes("in-full.anthropic.json")
        let out = try JSONParser.parse(
            AnthropicTranslator.openAIBody(fromAnthropic: body, model: "gpt-4o", forceStreamUsage: true))
        #expect(out["model"] == "gpt-4o")
        #expect(out["thinking"] == nil && out["top_k"] == nil)
        // Asked for last, after the members the client's request gave.
        #expect(out.objectValue?.members.last?.key == "stream_options")
        #expect(out["stream_options"] == ["include_usage": true])
        let text = String(decoding: out.serialized(), as: UTF8.self)
        #expect(!text.contains("cache_control") && !text.contains("thinking_blocks") && !text.contains("is_error"))
        // The reasoning text is OpenAI-compatible (vLLM, DeepSeek): it stays.
        #expect(out["messages"]?.item(2)?["reasoning_content"] == "Need a tool.")
        let unforced = try JSONParser.parse(
            AnthropicTranslator.openAIBody(fromAnthropic: body, model: "gpt-4o", forceStreamUsage: false))
        #expect(unforced.objectValue?.members.map(\.key).firstIndex(of: "stream_options")
            == unforced.objectValue?.members.map(\.key).firstIndex(of: "stream").map { $0 + 1 })
    }

    @Test func errorsWrapNonJSONBodies() {
        let html = OpenAIHub.error(status: 502, body: Array("<html>bad gateway</html>".utf8))
        #expect(html.status == 502 && html.code == "upstream_error" && html.message.contains("bad gateway"))
        let json = OpenAIHub.error(status: 400, body: Array(#"{"error":{"message":"m","type":"t","code":"c","param":"p"}}"#.utf8))
        #expect(json == GatewayError(status: 400, type: "t", code: "c", message: "m", param: "p"))
    }
}
