// `POST /v1/responses` through the exchange: the endpoint, the summary, the OpenAI and Azure passthrough
// (plans, model rewrites, usage from the Responses object and from the stream's final event) and the
// translated backends end to end (Responses request -> backend body, backend answer and stream -> Responses),
// compared with goldens in Fixtures/responses (`exchange-*`; SLUICE_UPDATE_FIXTURES=1 rewrites them).
import Testing

@testable import SluiceCore

@Suite struct ResponsesEndpointTests {
    static let key = CredentialSource.value("provider-key")

    static func exchange(_ backend: BackendConfig, model: String = "claude-sonnet", stream: Bool = false)
        -> UpstreamExchange
    {
        UpstreamExchange(
            backend: backend, clientAPI: Endpoint.responses.clientAPI, endpoint: .responses, requestModel: model,
            stream: stream, includeUsage: false, created: 1_700_000_000, requestID: "req-1")
    }

    static func bedrock() -> BackendConfig {
        var backend = BackendConfig(name: "bedrock", schema: .bedrockConverse)
        backend.aws = AWSSettings(
            region: "us-east-1", accessKeyID: .value("AKIDEXAMPLE"), secretAccessKey: .value("secret"), sessionToken: nil)
        return backend
    }

    static let translatedBackends: [BackendConfig] = [
        BackendConfig(name: "anthropic", schema: .anthropic, credential: key), bedrock(),
        BackendConfig(name: "gemini", schema: .gemini, credential: key),
    ]

    /// A Responses stream as OpenAI sends it (event lines, `sequence_number`, usage in the final event).
    static let openAIStream = Array(
        """
        event: response.created
        data: {"type":"response.created","response":{"id":"resp_1","object":"response","status":"in_progress","output":[],"usage":null},"sequence_number":0}

        event: response.output_text.delta
        data: {"type":"response.output_text.delta","item_id":"msg_1","output_index":0,"content_index":0,"delta":"Hi","sequence_number":1}

        event: response.completed
        data: {"type":"response.completed","response":{"id":"resp_1","object":"response","status":"completed","output":[],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":3},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":17}},"sequence_number":2}


        """.utf8)

    // MARK: - Endpoint and summary

    @Test func theResponsesPathIsItsOwnEndpoint() {
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/responses".utf8)) == .responses)
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/responses/?x=1".utf8)) == .responses)
        #expect(Endpoint.classify(method: Array("GET".utf8), path: Array("/v1/responses".utf8)) == .other)
        #expect(Endpoint.responses.routesOnBody && Endpoint.responses.clientAPI == .openAI)
        #expect(Endpoint(name: Endpoint.responses.name) == .responses)
        #expect(Endpoint.responses.operationName == "chat")
    }

    @Test func theSummaryReadsMaxOutputTokensOnlyForResponses() throws {
        let body = Array(#"{"model":"m","input":"x","stream":true,"max_output_tokens":300}"#.utf8)
        let summary = try RequestSummary.read(body, endpoint: .responses)
        #expect(summary == RequestSummary(model: "m", stream: true, maxTokens: 300))
        #expect(try RequestSummary.read(body, endpoint: .chatCompletions).maxTokens == nil)
        let error = #expect(throws: GatewayError.self) {
            try RequestSummary.read(Array(#"{"model":"m","max_output_tokens":-1}"#.utf8), endpoint: .responses)
        }
        #expect(error?.param == "max_output_tokens" && error?.status == 400)
    }

    // MARK: - Passthrough

    @Test func openAIPassesResponsesThroughUntouched() throws {
        let backend = BackendConfig(name: "openai", schema: .openAI, credential: Self.key)
        for stream in [false, true] {
            var exchange = Self.exchange(backend, model: "gpt-4o-mini", stream: stream)
            let plan = try exchange.requestPlan()
            #expect(plan.path == "/v1/responses")
            // A Responses stream reports usage in its final event: nothing to force, so nothing to rewrite.
            #expect(!plan.rewritesBody && !plan.needsBody)
            #expect(exchange.responseMode(status: 200) == (stream ? .translateStream : .passthroughMetered))
            #expect(exchange.responseMode(status: 400) == .passthrough)
            let body = Array(#"{"model":"gpt-4o-mini","input":"x","previous_response_id":"resp_1"}"#.utf8)
            #expect(try exchange.translateRequest(body) == body)
        }
        var overridden = backend
        overridden.modelOverrides = ["gpt-4o-mini": "gpt-4o-mini-2024-07-18"]
        var exchange = Self.exchange(overridden, model: "gpt-4o-mini", stream: true)
        #expect(try exchange.requestPlan().rewritesBody)
        let sent = try exchange.translateRequest(Array(#"{"model":"gpt-4o-mini","input":"x","stream":true}"#.utf8))
        #expect(String(decoding: sent, as: UTF8.self) == #"{"model":"gpt-4o-mini-2024-07-18","input":"x","stream":true}"#)
    }

    @Test func azureUsesTheV1APIWithTheDeploymentAsModel() throws {
        var backend = BackendConfig(name: "azure", schema: .azureOpenAI, credential: Self.key)
        backend.azureAPIVersion = "2024-10-21"
        backend.pathPrefix = "/proxy"
        backend.modelOverrides = ["gpt-4o-mini": "mini-deployment"]
        var exchange = Self.exchange(backend, model: "gpt-4o-mini", stream: true)
        let plan = try exchange.requestPlan()
        #expect(plan.path == "/proxy/openai/v1/responses")
        #expect(plan.credentialHeader?.name == "api-key")
        #expect(plan.rewritesBody)
        let sent = try exchange.translateRequest(Array(#"{"model":"gpt-4o-mini","input":"x","stream":true}"#.utf8))
        #expect(String(decoding: sent, as: UTF8.self) == #"{"model":"mini-deployment","input":"x","stream":true}"#)
        // Chat keeps its deployment path.
        let chat = UpstreamExchange(
            backend: backend, clientAPI: .openAI, endpoint: .chatCompletions, requestModel: "gpt-4o-mini", stream: false,
            includeUsage: false, created: 1, requestID: "r")
        #expect(try chat.requestPlan().path.hasPrefix("/proxy/openai/deployments/mini-deployment/chat/completions?"))
    }

    @Test func usageIsReadFromAResponsesObject() {
        let body = Array(
            #"{"id":"resp_1","object":"response","output":[],"usage":{"input_tokens":12,"input_tokens_details":{"cached_tokens":3},"output_tokens":5,"output_tokens_details":{"reasoning_tokens":2},"total_tokens":17}}"#
                .utf8)
        let expected = TokenUsage(inputTokens: 12, outputTokens: 5, cachedInputTokens: 3, reasoningTokens: 2)
        #expect(ResponsesUsage.read(fromResponse: body) == expected)
        let exchange = Self.exchange(BackendConfig(name: "openai", schema: .openAI), model: "gpt-4o-mini")
        #expect(exchange.usage(ofPassthrough: body) == expected)
        // Chat's names are not Responses' names.
        #expect(ResponsesUsage.read(fromResponse: Array(#"{"usage":{"prompt_tokens":9}}"#.utf8)) == TokenUsage())
        #expect(ResponsesUsage.read(fromResponse: Array(#"{"usage":null}"#.utf8)) == nil)
        #expect(ResponsesUsage.read(fromResponse: Array("[1]".utf8)) == nil)
        #expect(ResponsesUsage.read(fromResponse: Array(#"{"usage":{"input_tokens":"#.utf8)) == nil)
        let hostile = ResponsesUsage.read(fromResponse: Array(#"{"usage":{"input_tokens":1e30,"output_tokens":-4}}"#.utf8))
        #expect(hostile?.isClamped == true && hostile?.outputTokens == 0)
    }

    /// The stream passes byte for byte, wherever it is cut, and its final event's usage is metered.
    @Test func aPassedThroughStreamIsMeteredFromItsFinalEvent() throws {
        let input = Self.openAIStream
        let expected = TokenUsage(inputTokens: 12, outputTokens: 5, cachedInputTokens: 3, reasoningTokens: 2)
        for cut in stride(from: 1, to: input.count, by: 7) {
            var translator = try Self.exchange(BackendConfig(name: "openai", schema: .openAI), model: "m", stream: true)
                .makeStreamTranslator()
            var out = translator.feed(Array(input[..<cut]))
            out += translator.feed(Array(input[cut...]))
            out += translator.finish()
            #expect(out == input)
            #expect(translator.usage == expected, "cut at \(cut)")
        }
        // Without `event:` lines the data's type says which event is final.
        var watcher = ResponsesStreamUsageWatcher()
        watcher.feed(Array(#"data: {"type":"response.incomplete","response":{"usage":{"input_tokens":4,"output_tokens":16}}}"#.utf8))
        #expect(watcher.usage == nil)
        watcher.finish()
        #expect(watcher.usage == TokenUsage(inputTokens: 4, outputTokens: 16))
        // Other events' usage-like members are not read; an oversized event stops the reading only.
        var small = ResponsesStreamUsageWatcher(maxEventBytes: 64)
        small.feed(Array("event: response.output_text.delta\ndata: \(String(repeating: "x", count: 100))\n\n".utf8))
        small.feed(input)
        #expect(small.usage == nil)
    }

    // MARK: - Translated backends

    @Test func previousResponseIDIsRefusedWhereTheGatewayWouldNeedState() throws {
        for backend in Self.translatedBackends {
            var exchange = Self.exchange(backend)
            #expect(try exchange.requestPlan().rewritesBody)
            let body = Array(#"{"model":"claude-sonnet","input":"and then?","previous_response_id":"resp_1"}"#.utf8)
            let error = #expect(throws: TranslateError.self) { try exchange.translateRequest(body) }
            #expect(error?.status == 400 && error?.code == "unsupported_parameter")
            #expect(error?.param == "previous_response_id", "\(backend.name)")
        }
    }

    @Test func fullRequestReachesEachBackendAsItsOwnBody() throws {
        for backend in Self.translatedBackends {
            var exchange = Self.exchange(backend, stream: true)
            var request = try ResponsesFixtures.bytes("request-full.responses.json")
            if backend.schema == .bedrockConverse {
                // Bedrock takes inline images only, and makes a json_schema format a forced tool that cannot
                // be combined with other tools (see ResponsesTests.fullHubRequestReachesEveryTranslatedBackend).
                var root = try JSONParser.parse(request).objectValue?.members ?? []
                root.removeAll { $0.key == "text" || $0.key == "input" }
                root.append(("input", try JSONParser.parse(#"[{"role":"user","content":"Weather in Paris?"}]"#)))
                request = JSONValue.object(JSONObject(root)).serialized()
            }
            let sent = try exchange.translateRequest(request)
            try ResponsesFixtures.expectJSON(sent, matches: "exchange-request.\(backend.name).json")
        }
    }

    @Test(arguments: [
        ("anthropic", "anthropic/response-full.anthropic.json"), ("bedrock", "bedrock/response.json"),
        ("gemini", "gemini/full.response.gemini.json"),
    ])
    func backendAnswersBecomeResponsesObjects(backend name: String, fixture: String) throws {
        let backend = try #require(Self.translatedBackends.first { $0.name == name })
        var exchange = Self.exchange(backend)
        _ = try exchange.translateRequest(try ResponsesFixtures.bytes("request-full.responses.json").withoutStream(backend))
        let answer = try exchange.translateResponse(try Self.fixture(fixture))
        #expect(answer.usage.inputTokens > 0 && answer.usage.outputTokens > 0)
        let object = try JSONParser.parse(answer.body)
        #expect(object["object"] == "response")
        #expect(object["usage"]?["input_tokens"]?.int64Value == Int64(answer.usage.inputTokens))
        try ResponsesFixtures.expectJSON(answer.body, matches: "exchange-response.\(name).json")
    }

    @Test(arguments: [("anthropic", "anthropic/stream-tools.anthropic.sse"), ("gemini", "gemini/stream.gemini.sse")])
    func backendStreamsBecomeTypedResponsesEvents(backend name: String, fixture: String) throws {
        let backend = try #require(Self.translatedBackends.first { $0.name == name })
        let input = try Self.fixture(fixture)
        var whole: [UInt8]?
        for cut in [input.count / 3, input.count / 2, input.count - 1] {
            var exchange = Self.exchange(backend, stream: true)
            _ = try exchange.translateRequest(Array(#"{"model":"claude-sonnet","input":"Weather?","stream":true}"#.utf8))
            var translator = try exchange.makeStreamTranslator()
            var out = translator.feed(Array(input[..<cut]))
            out += translator.feed(Array(input[cut...]))
            out += translator.finish()
            #expect(translator.usage.outputTokens > 0)
            if let whole { #expect(out == whole, "cut at \(cut)") } else { whole = out }
        }
        let events = AnthropicFixtures.events(try #require(whole))
        #expect(events.first?.name == "response.created" && events.last?.name == "response.completed")
        for (index, event) in events.enumerated() {
            #expect(try JSONParser.parse(event.data)["sequence_number"]?.int64Value == Int64(index))
        }
        try ResponsesFixtures.expectBytes(try #require(whole), match: "exchange-stream.\(name).sse")
    }

    static func fixture(_ path: String) throws -> [UInt8] {
        let parts = path.split(separator: "/", maxSplits: 1).map(String.init)
        switch parts.first {
        case "anthropic": return try AnthropicFixtures.bytes(parts[1])
        case "bedrock": return try BedrockFixtures.bytes(parts[1])
        default: return try GeminiFixtureSupport.load(path)
        }
    }
}

extension [UInt8] {
    /// The full request fixture, unstreamed, in the form `fullRequestReachesEachBackendAsItsOwnBody` sends to
    /// `backend`.
    fileprivate func withoutStream(_ backend: BackendConfig) throws -> [UInt8] {
        var root = try JSONParser.parse(self).objectValue?.members ?? []
        root.removeAll { $0.key == "stream" || (backend.schema == .bedrockConverse && ($0.key == "text" || $0.key == "input")) }
        if backend.schema == .bedrockConverse {
            root.append(("input", try JSONParser.parse(#"[{"role":"user","content":"Weather in Paris?"}]"#)))
        }
        return JSONValue.object(JSONObject(root)).serialized()
    }
}
