// Token counting through the exchange: where each backend counts, the count requests the translated backends
// get (goldens in Fixtures/responses/count-*), the count answers as each client reads them, and that a count is
// never a stream and never reports usage.
import Testing

@testable import SluiceCore

@Suite struct TokenCountingTests {
    static let key = CredentialSource.value("provider-key")

    static func exchange(_ backend: BackendConfig, endpoint: Endpoint, model: String = "m") -> UpstreamExchange {
        UpstreamExchange(
            backend: backend, clientAPI: endpoint.clientAPI, endpoint: endpoint, requestModel: model, stream: false,
            includeUsage: false, created: 1_700_000_000, requestID: "req-1")
    }

    static func vertex() -> BackendConfig {
        var backend = BackendConfig(name: "vertex", schema: .vertexGemini, credential: key)
        backend.gcp = GCPSettings(project: "p", location: "us-central1")
        return backend
    }

    static let backends: [BackendConfig] = [
        BackendConfig(name: "openai", schema: .openAI, credential: key),
        BackendConfig(name: "azure", schema: .azureOpenAI, credential: key),
        BackendConfig(name: "anthropic", schema: .anthropic, credential: key), ResponsesEndpointTests.bedrock(),
        BackendConfig(name: "gemini", schema: .gemini, credential: key), vertex(),
    ]

    static let responsesCount = Array(
        #"{"model":"m","instructions":"Be brief.","input":[{"role":"user","content":"How far is the moon?"}],"tools":[{"type":"function","name":"lookup","parameters":{"type":"object","properties":{"q":{"type":"string"}}}}]}"#
            .utf8)
    static let anthropicCount = Array(
        #"{"model":"m","system":"Be brief.","messages":[{"role":"user","content":"How far is the moon?"}]}"#.utf8)

    @Test func theCountingPathsAreTheirOwnEndpoints() throws {
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/responses/input_tokens".utf8)) == .responsesInputTokens)
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/messages/count_tokens".utf8)) == .anthropicCountTokens)
        #expect(Endpoint.responsesInputTokens.clientAPI == .openAI && Endpoint.anthropicCountTokens.clientAPI == .anthropic)
        #expect(Endpoint.allCases.filter(\.countsTokens) == [.responsesInputTokens, .anthropicCountTokens])
        for endpoint in Endpoint.allCases { #expect(Endpoint(name: endpoint.name) == endpoint) }
        // A count never streams, whatever the body says.
        let summary = try RequestSummary.read(Array(#"{"model":"m","input":"x","stream":true}"#.utf8), endpoint: .responsesInputTokens)
        #expect(!summary.stream)
    }

    @Test func eachBackendCountsWhereItCounts() throws {
        let paths = try Self.backends.map { backend in
            try Self.exchange(backend, endpoint: .responsesInputTokens, model: "gemini-2.5-flash").requestPlan().path
        }
        #expect(paths == [
            "/v1/responses/input_tokens", "/openai/v1/responses/input_tokens", "/v1/messages/count_tokens",
            "/model/gemini-2.5-flash/count-tokens", "/v1beta/models/gemini-2.5-flash:countTokens",
            "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.5-flash:countTokens",
        ])
        let anthropic = try Self.exchange(Self.backends[2], endpoint: .anthropicCountTokens).requestPlan()
        #expect(anthropic.path == "/v1/messages/count_tokens" && !anthropic.rewritesBody)
        #expect(anthropic.setHeaders.contains { $0 == ("anthropic-version", "2023-06-01") })
        // OpenAI has no endpoint that counts an Anthropic request.
        for backend in Self.backends.prefix(2) {
            let error = #expect(throws: TranslateError.self) {
                try Self.exchange(backend, endpoint: .anthropicCountTokens).requestPlan()
            }
            #expect(error?.code == "unsupported_endpoint")
        }
    }

    @Test func translatedCountRequestsMatchGoldens() throws {
        for backend in Self.backends.dropFirst(2) {
            for (endpoint, body) in [(Endpoint.responsesInputTokens, Self.responsesCount), (.anthropicCountTokens, Self.anthropicCount)] {
                var exchange = Self.exchange(backend, endpoint: endpoint, model: "m")
                if exchange.sameSchema {
                    #expect(try exchange.translateRequest(body) == body)
                    continue
                }
                #expect(try exchange.requestPlan().rewritesBody)
                let sent = try exchange.translateRequest(body)
                try ResponsesFixtures.expectJSON(sent, matches: "count-request.\(endpoint.name).\(backend.name).json")
            }
        }
    }

    @Test func countAnswersBecomeTheClientsCountObject() throws {
        let answers: [(BackendConfig, String)] = [
            (Self.backends[2], #"{"input_tokens":42}"#), (Self.backends[3], #"{"inputTokens":42}"#),
            (Self.backends[4], #"{"totalTokens":42,"promptTokensDetails":[{"modality":"TEXT","tokenCount":42}]}"#),
        ]
        for (backend, answer) in answers {
            let openAI = try Self.exchange(backend, endpoint: .responsesInputTokens).translateResponse(Array(answer.utf8))
            #expect(String(decoding: openAI.body, as: UTF8.self) == #"{"object":"response.input_tokens","input_tokens":42}"#)
            #expect(openAI.usage == TokenUsage())
            let anthropic = Self.exchange(backend, endpoint: .anthropicCountTokens)
            if !anthropic.sameSchema {
                #expect(String(decoding: try anthropic.translateResponse(Array(answer.utf8)).body, as: UTF8.self) == #"{"input_tokens":42}"#)
            }
        }
        // Gemini leaves totalTokens out for nothing to count.
        let empty = try Self.exchange(Self.backends[4], endpoint: .anthropicCountTokens).translateResponse(Array("{}".utf8))
        #expect(String(decoding: empty.body, as: UTF8.self) == #"{"input_tokens":0}"#)
        // A same-schema count passes through, read for no usage.
        let passthrough = Self.exchange(Self.backends[0], endpoint: .responsesInputTokens)
        #expect(passthrough.responseMode(status: 200) == .passthroughMetered)
        #expect(passthrough.usage(ofPassthrough: Array(#"{"object":"response.input_tokens","input_tokens":9}"#.utf8)) == TokenUsage())
    }

    @Test(arguments: [#"{"input_tokens":-1}"#, #"{"input_tokens":1e300}"#, #"{"input_tokens":"9"}"#, "[]", "not json", #"{}"#])
    func hostileCountAnswersAreBadGateways(_ answer: String) {
        let error = #expect(throws: TranslateError.self) {
            try Self.exchange(Self.backends[2], endpoint: .responsesInputTokens).translateResponse(Array(answer.utf8))
        }
        #expect(error?.status == 502)
    }

    /// The key allows 2 requests a minute: three counts all go through, carry the key's rate-limit headers,
    /// and leave both requests to the chat calls after them.
    @Test func countsAreNeitherAdmittedNorCharged() throws {
        let gateway = try GatewayStreamTests.gateway(GatewayStreamTests.config)
        func call(_ path: String, body: String) -> (routed: Bool, headers: [String]) {
            var machine = GatewayStream(gateway: gateway)
            _ = machine.requestHeaders(
                GatewayStreamTests.head("POST", path), contentLength: nil, endOfStream: false, nowSeconds: 0, nowMillis: 1_000)
            let routed = machine.route(body: Array(body.utf8), header: { _ in nil }, nowMillis: 1_000, nowMicros: 1_000_000)
            machine.actions.removeAll()
            guard routed else { return (false, []) }
            _ = machine.responseHeaders(status: 200, contentLength: 20, bufferLimit: 1 << 20, endOfStream: false, report: { nil })
            let headers = machine.actions.compactMap { action -> String? in
                if case .setResponseHeader(let name, _) = action { String(describing: name) } else { nil }
            }
            let report = AttemptReport(usage: TokenUsage(), backend: "openai", provider: "openai", responseModel: "gpt-4o-mini")
            machine.streamComplete(report: report, nowMillis: 1_001, nowMicros: 1_001_000)
            return (true, headers)
        }
        for _ in 0..<3 {
            let count = call("/v1/responses/input_tokens", body: #"{"model":"gpt-4o-mini","input":"x"}"#)
            #expect(count.routed)
            #expect(count.headers.contains("x-ratelimit-remaining-requests"))
        }
        #expect(call("/v1/responses", body: #"{"model":"gpt-4o-mini","input":"x"}"#).routed)
        #expect(call("/v1/chat/completions", body: #"{"model":"gpt-4o-mini"}"#).routed)
        // The third call is over the limit: counts did not use it up, calls do.
        #expect(!call("/v1/responses", body: #"{"model":"gpt-4o-mini","input":"x"}"#).routed)
    }
}
