// The optional adapter requirements: where each backend serves images and audio, rerank and token
// counting (the tables the family files used to keep), the settings the config reader requires,
// and the request headers an adapter reads — Claude on Bedrock's `anthropic-beta`, which becomes
// the body's `anthropic_beta` and is carried to a later attempt of the same request.
import Testing

@testable import SluiceCore

@Suite struct AdapterEndpointsTests {
    static func backend(_ schema: BackendSchema) -> BackendConfig {
        var backend = BackendConfig(name: schema.rawValue, schema: schema, credential: .value("k"))
        backend.azureAPIVersion = "2024-10-21"
        backend.aws = AWSSettings(region: "us-east-1", accessKeyID: .value("AKID"), secretAccessKey: .value("s"))
        backend.gcp = GCPSettings(project: "p", location: "us-east5")
        backend.pathPrefix = "/pre"
        return backend
    }

    static func plan(_ schema: BackendSchema, client: ClientAPI = .openAI, endpoint: Endpoint) -> String {
        let exchange = UpstreamExchange(
            backend: backend(schema), clientAPI: client, endpoint: endpoint, requestModel: "m", stream: false,
            includeUsage: false, created: 1, requestID: "r")
        do {
            return try exchange.requestPlan().path
        } catch {
            return error.code
        }
    }

    // MARK: - Endpoint families

    @Test func imagesAndAudioGoToOpenAIAndAzureOnly() {
        let paths = BackendSchema.allCases.map { "\($0.rawValue) \(Self.plan($0, endpoint: .audioSpeech))" }
        #expect(paths == [
            "openai /pre/v1/audio/speech",
            "azure_openai /pre/openai/deployments/m/audio/speech?api-version=2024-10-21",
            "anthropic unsupported_endpoint", "bedrock_converse unsupported_endpoint", "gemini unsupported_endpoint",
            "vertex_gemini unsupported_endpoint", "vertex_anthropic unsupported_endpoint",
            "bedrock_anthropic unsupported_endpoint", "cohere unsupported_endpoint",
        ])
        #expect(BackendSchema.allCases.filter { $0.adapter.mediaPath(for: ProviderAdapterTests.attempt(Self.backend($0), endpoint: .imagesGenerations)) != nil } == [.openAI, .azureOpenAI])
        // Azure names the deployment in the path, so a model override leaves the body alone.
        #expect(OpenAIAdapter.mediaModelInBody && !AzureOpenAIAdapter.mediaModelInBody)
    }

    @Test func rerankGoesWhereTheAdapterNamesADialect() {
        let dialects = BackendSchema.allCases.compactMap { schema in schema.adapter.rerankDialect.map { (schema, $0) } }
        #expect(dialects.map(\.0) == [.openAI, .cohere] && dialects.map(\.1) == [.openAICompatible, .cohereV2])
        #expect(Self.plan(.openAI, endpoint: .rerank) == "/pre/v1/rerank")
        #expect(Self.plan(.cohere, client: .cohere, endpoint: .cohereRerank) == "/pre/v2/rerank")
        for schema in BackendSchema.allCases where schema != .openAI && schema != .cohere {
            #expect(Self.plan(schema, endpoint: .rerank) == "unsupported_endpoint", "\(schema)")
        }
        // The dialect writes the body: only Cohere takes a per-document limit.
        let request = RerankRequest(query: "q", documents: ["a"], maxTokensPerDoc: 10)
        #expect(!String(decoding: request.upstreamBody(dialect: .openAICompatible, model: "m"), as: UTF8.self).contains("max_tokens_per_doc"))
        #expect(String(decoding: request.upstreamBody(dialect: .cohereV2, model: "m"), as: UTF8.self).contains(#""max_tokens_per_doc":10"#))
    }

    @Test func eachBackendCountsWhereItsAdapterSays() {
        let responses = BackendSchema.allCases.map { "\($0.rawValue) \(Self.plan($0, endpoint: .responsesInputTokens))" }
        #expect(responses == [
            "openai /pre/v1/responses/input_tokens",
            "azure_openai /pre/openai/v1/responses/input_tokens",
            "anthropic /pre/v1/messages/count_tokens",
            "bedrock_converse /pre/model/m/count-tokens",
            "gemini /pre/v1beta/models/m:countTokens",
            "vertex_gemini /pre/v1/projects/p/locations/us-east5/publishers/google/models/m:countTokens",
            "vertex_anthropic /pre/v1/projects/p/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict",
            "bedrock_anthropic /pre/model/m/count-tokens",
            "cohere unsupported_endpoint",
        ])
        let anthropic = BackendSchema.allCases.map { Self.plan($0, client: .anthropic, endpoint: .anthropicCountTokens) }
        #expect(anthropic.map { $0 == "unsupported_endpoint" } == [true, true, false, false, false, false, false, false, true])
        // A server without the Responses API has no counter either.
        var chatOnly = Self.backend(.openAI)
        chatOnly.servesResponses = false
        #expect(OpenAIAdapter.tokenCountingPlan(for: ProviderAdapterTests.attempt(chatOnly, endpoint: .responsesInputTokens)) == nil)
        #expect(BackendSchema.allCases.map { $0.adapter.tokenCountAnswer.member } == [
            "input_tokens", "input_tokens", "input_tokens", "inputTokens", "totalTokens", "totalTokens", "input_tokens",
            "inputTokens", "input_tokens",
        ])
    }

    // MARK: - Config settings

    @Test func eachSchemaRequiresWhatItsAdapterSays() {
        let required = BackendSchema.allCases.map { schema in
            BackendSettings.checkOrder.filter { schema.adapter.requiredSettings(of: schema).contains($0) }.map(\.key)
        }
        #expect(required == [
            [], ["azure", "credential"], ["credential"], ["aws"], ["credential"], ["gcp", "credential"], ["gcp", "credential"],
            ["aws"], ["credential"],
        ])
        #expect(BackendSchema.allCases.filter { $0.adapter.optionalSettings(of: $0).contains(.responsesAPI) } == [.openAI])
    }

    @Test func poolsAndDefaultAddressesAreTheAdaptersWord() {
        #expect(BackendSchema.allCases.filter { $0.adapter.servesPools(of: $0) } == [.openAI, .anthropic, .gemini])
        let hosts = BackendSchema.allCases.map { $0.adapter.defaultHost(of: $0, awsRegion: "eu-west-3", gcpLocation: "us-east5") }
        #expect(hosts == [
            nil, nil, "api.anthropic.com", "bedrock-runtime.eu-west-3.amazonaws.com", "generativelanguage.googleapis.com",
            "us-east5-aiplatform.googleapis.com", "us-east5-aiplatform.googleapis.com", "bedrock-runtime.eu-west-3.amazonaws.com",
            "api.cohere.com",
        ])
        // Without the region or location (absent, or not a host label) there is no default.
        #expect(BedrockAnthropicAdapter.defaultHost(of: .bedrockAnthropic, awsRegion: nil, gcpLocation: "x") == nil)
        #expect(GeminiAdapter.defaultHost(of: .vertexGemini, awsRegion: "x", gcpLocation: nil) == nil)
        #expect(VertexAnthropicAdapter.defaultHost(of: .vertexAnthropic, awsRegion: nil, gcpLocation: "global") == "aiplatform.googleapis.com")
    }

    // MARK: - anthropic-beta on Bedrock

    @Test func betaNamesAreSplitTrimmedAndChecked() throws {
        #expect(try AnthropicOnCloud.betaNames(header: "a-2025-01-01") == ["a-2025-01-01"])
        #expect(try AnthropicOnCloud.betaNames(header: " a ,\tb,, a ,c ") == ["a", "b", "c"])
        #expect(try AnthropicOnCloud.betaNames(header: " , ") == [])
        let many = (0..<AnthropicOnCloud.maxBetas).map { "beta-\($0)" }
        #expect(try AnthropicOnCloud.betaNames(header: many.joined(separator: ",")) == many)
        for bad in [
            (many + ["one-more"]).joined(separator: ","), String(repeating: "x", count: AnthropicOnCloud.maxBetaNameBytes + 1),
            "a b", #"a,"b""#, "a;b", "a\\b", "é", "a\u{0}",
            String(repeating: ",", count: AnthropicOnCloud.maxBetaHeaderBytes + 1),
        ] {
            #expect(throws: TranslateError.self, "\(bad)") { try AnthropicOnCloud.betaNames(header: bad) }
        }
        do {
            _ = try AnthropicOnCloud.betaNames(header: "a b")
        } catch {
            #expect(error.status == 400 && error.code == "invalid_anthropic_beta" && error.param == "anthropic-beta")
        }
    }

    @Test func betasReplaceTheBodysOwnAndOnlyWhenGiven() throws {
        let body = Array(#"{"model":"x","anthropic_beta":["old"],"max_tokens":1,"messages":[]}"#.utf8)
        #expect(String(decoding: try AnthropicOnCloud.cloudBody(body, anthropicVersion: "v", keepStream: false, betas: ["a", "b"]), as: UTF8.self)
            == #"{"max_tokens":1,"messages":[],"anthropic_beta":["a","b"],"anthropic_version":"v"}"#)
        #expect(String(decoding: try AnthropicOnCloud.cloudBody(body, anthropicVersion: "v", keepStream: false), as: UTF8.self)
            == #"{"anthropic_beta":["old"],"max_tokens":1,"messages":[],"anthropic_version":"v"}"#)
    }

    static let bedrockClaudeConfig = #"""
        {"backend":"bedrock-claude","schema":"bedrock_anthropic","model_overrides":{"claude-haiku":"anthropic.claude-3-5-haiku-20241022-v1:0"},
         "aws":{"region":"us-east-1","access_key_id":{"value":"AKID"},"secret_access_key":{"value":"s"}}}
        """#
    static let body = #"{"model":"claude-haiku","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#

    /// One attempt through the machine with `headers`; its actions, and the body it sent.
    static func attempt(
        _ config: String, headers: [(name: String, value: String)], carried: [(name: String, value: String)] = [],
        client: Endpoint = .anthropicMessages
    ) throws -> (actions: [UpstreamAction], sent: String?) {
        var machine = UpstreamAttempt(shared: try UpstreamAttemptTests.shared(config))
        var actions: [UpstreamAction] = []
        _ = machine.requestHeaders(
            context: UpstreamAttemptTests.context(client, model: "claude-haiku", bodyBytes: Self.body.utf8.count),
            hostBackend: nil, headers: TestRequestHeaders(headers), endOfStream: false, nowSeconds: 1_700_000_000,
            credential: UpstreamAttemptTests.credentials(["ant-key": "sk-ant"]), carried: carried)
        actions += machine.actions
        machine.actions.removeAll()
        var sent: String?
        // A failed attempt waits for no body (`.pass`).
        if machine.requestBody(endOfStream: true) == .read {
            _ = machine.requestBodyComplete(
                Array(Self.body.utf8), header: { _ in nil }, nowSeconds: 1_700_000_000,
                credential: UpstreamAttemptTests.credentials([:]))
            actions += machine.actions
            for case .replaceRequestBody(let bytes) in machine.actions { sent = String(decoding: bytes, as: UTF8.self) }
        }
        return (actions, sent)
    }

    static func carriedHeaders(_ actions: [UpstreamAction]) -> [String] {
        actions.compactMap { if case .carryRequestHeader(let name, let value) = $0 { "\(name): \(value)" } else { nil } }
    }

    @Test func bedrockTakesTheBetaHeaderIntoTheBodyAndCarriesIt() throws {
        // A repeated header is one list.
        let (actions, sent) = try Self.attempt(
            Self.bedrockClaudeConfig,
            headers: [("anthropic-beta", "interleaved-thinking-2025-05-14, token-efficient-tools-2025-02-19"), ("anthropic-beta", "context-1m-2025-08-07")])
        #expect(sent?.contains(#""anthropic_beta":["interleaved-thinking-2025-05-14","token-efficient-tools-2025-02-19","context-1m-2025-08-07"]"#) == true)
        // Taken off the request, and kept for a later attempt.
        #expect(UpstreamAttemptTests.requestHeaderEdits(actions)["anthropic-beta"] == .some(nil))
        #expect(Self.carriedHeaders(actions) == [
            "anthropic-beta: interleaved-thinking-2025-05-14, token-efficient-tools-2025-02-19, context-1m-2025-08-07",
        ])
        // An OpenAI client's betas go the same way.
        let openAI = try Self.attempt(Self.bedrockClaudeConfig, headers: [("anthropic-beta", "a")], client: .chatCompletions)
        #expect(openAI.sent?.contains(#""anthropic_beta":["a"]"#) == true)
        // Without the header nothing is read, removed or carried, and the body has no betas.
        let plain = try Self.attempt(Self.bedrockClaudeConfig, headers: [])
        #expect(plain.sent?.contains("anthropic_beta") == false && Self.carriedHeaders(plain.actions).isEmpty)
        #expect(UpstreamAttemptTests.requestHeaderEdits(plain.actions)["anthropic-beta"] == nil)
    }

    @Test func aRetryFindsTheBetasAnEarlierAttemptTookOff() throws {
        let carried = [(name: "anthropic-beta", value: "a, b")]
        // Bedrock again: the header is gone from the shared map, the carried value is used.
        let again = try Self.attempt(Self.bedrockClaudeConfig, headers: [], carried: carried)
        #expect(again.sent?.contains(#""anthropic_beta":["a","b"]"#) == true && Self.carriedHeaders(again.actions).isEmpty)
        // Anthropic takes the header: it is put back.
        let anthropic = try Self.attempt(UpstreamAttemptTests.anthropicConfig, headers: [], carried: carried)
        #expect(UpstreamAttemptTests.requestHeaderEdits(anthropic.actions)["anthropic-beta"] == "a, b")
    }

    @Test func aBadBetaHeaderIsA400InTheClientsShape() throws {
        let (actions, sent) = try Self.attempt(Self.bedrockClaudeConfig, headers: [("anthropic-beta", "a b")])
        #expect(sent == nil)
        let reply = try #require(UpstreamAttemptTests.localReply(actions))
        #expect(reply.status == 400)
        let text = String(decoding: reply.body, as: UTF8.self)
        #expect(text.contains(#""type":"error""#) && text.contains("invalid_request_error") && text.contains("anthropic-beta"))
    }
}
