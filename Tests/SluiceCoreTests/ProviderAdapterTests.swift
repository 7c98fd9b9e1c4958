// Each adapter's request plan and credential application, the dispatch from schema to adapter,
// and the union of credential headers the filter strips before every attempt. Whole translations
// are the golden fixtures' job; these pin what the filter carries out without knowing providers.
import Testing

@testable import SluiceCore

@Suite struct ProviderAdapterTests {
    static let key = CredentialSource.value("provider-key")

    static func attempt(
        _ backend: BackendConfig, client: ClientAPI = .openAI, endpoint: Endpoint = .chatCompletions,
        model: String = "m", stream: Bool = false
    ) -> ProviderAttempt {
        ProviderAttempt(
            backend: backend, clientAPI: client, endpoint: endpoint, requestModel: model, stream: stream,
            includeUsage: false, created: 1, requestID: "r")
    }

    static func bedrock(sessionToken: CredentialSource? = nil) -> BackendConfig {
        var backend = BackendConfig(name: "bedrock", schema: .bedrockConverse)
        backend.aws = AWSSettings(
            region: "eu-west-3", accessKeyID: .value("AKIDEXAMPLE"), secretAccessKey: .secret(name: "aws-secret", sds: .ads),
            sessionToken: sessionToken)
        return backend
    }

    static func vertexClaude() -> BackendConfig {
        var backend = BackendConfig(name: "vertex-claude", schema: .vertexAnthropic, credential: Self.key)
        backend.gcp = GCPSettings(project: "my-project", location: "us-east5")
        return backend
    }

    static func bedrockClaude() -> BackendConfig {
        var backend = Self.bedrock()
        backend.name = "bedrock-claude"
        backend.schema = .bedrockAnthropic
        return backend
    }

    // MARK: - Dispatch

    @Test func everySchemaHasTheAdapterOfItsName() {
        let names = BackendSchema.allCases.map { "\($0.rawValue)=\(String(describing: $0.adapter))" }
        #expect(names == [
            "openai=OpenAIAdapter", "azure_openai=AzureOpenAIAdapter", "anthropic=AnthropicAdapter",
            "bedrock_converse=BedrockConverseAdapter", "gemini=GeminiAdapter", "vertex_gemini=GeminiAdapter",
            "vertex_anthropic=VertexAnthropicAdapter", "bedrock_anthropic=BedrockAnthropicAdapter",
            "cohere=CohereAdapter",
        ])
    }

    @Test func onlyTheClientsOwnAPIPassesThrough() {
        let native = BackendSchema.allCases.map { schema in
            (schema.rawValue, schema.adapter.speaksNatively(.openAI), schema.adapter.speaksNatively(.anthropic))
        }
        #expect(native.map(\.0) == [
            "openai", "azure_openai", "anthropic", "bedrock_converse", "gemini", "vertex_gemini", "vertex_anthropic",
            "bedrock_anthropic", "cohere",
        ])
        #expect(native.map(\.1) == [true, true, false, false, false, false, false, false, false])
        #expect(native.map(\.2) == [false, false, true, false, false, false, true, true, false])
        #expect(BackendSchema.allCases.map { $0.adapter.speaksNatively(.cohere) } == [false, false, false, false, false, false, false, false, true])
    }

    // MARK: - OpenAI-compatible

    @Test func openAIPlan() throws {
        var backend = BackendConfig(name: "vllm", schema: .openAI, credential: Self.key)
        backend.pathPrefix = "/openai"
        let chat = try OpenAIAdapter.requestPlan(for: Self.attempt(backend))
        #expect(chat.method == nil)
        #expect(chat.path == "/openai/v1/chat/completions")
        #expect(chat.setHeaders.map(\.name) == ["content-type"])
        #expect(chat.credential == .header(HeaderCredential(name: "authorization", prefix: "Bearer ", source: Self.key)))
        #expect(!chat.rewritesBody && !chat.needsBody)
        #expect(try OpenAIAdapter.requestPlan(for: Self.attempt(backend, endpoint: .completions)).path == "/openai/v1/completions")
        #expect(try OpenAIAdapter.requestPlan(for: Self.attempt(backend, endpoint: .embeddings)).path == "/openai/v1/embeddings")
        // A stream is rewritten to ask for usage; an Anthropic client's request is translated.
        #expect(try OpenAIAdapter.requestPlan(for: Self.attempt(backend, stream: true)).rewritesBody)
        #expect(try OpenAIAdapter.requestPlan(for: Self.attempt(backend, client: .anthropic, endpoint: .anthropicMessages)).rewritesBody)
        backend.modelOverrides = ["m": "m-2025"]
        #expect(try OpenAIAdapter.requestPlan(for: Self.attempt(backend)).rewritesBody)
    }

    @Test func openAIWithoutAKeySendsNoCredential() throws {
        let backend = BackendConfig(name: "local", schema: .openAI)
        let plan = try OpenAIAdapter.requestPlan(for: Self.attempt(backend))
        #expect(plan.credential == .none)
        #expect(plan.credentialHeader == nil)
        #expect(plan.credential.sources.isEmpty)
    }

    @Test func azurePlanPutsTheDeploymentInThePath() throws {
        var backend = BackendConfig(name: "azure", schema: .azureOpenAI, credential: Self.key)
        backend.azureAPIVersion = "2024-10-21"
        backend.modelOverrides = ["gpt": "my deployment/1"]
        let plan = try AzureOpenAIAdapter.requestPlan(for: Self.attempt(backend, model: "gpt"))
        #expect(plan.path == "/openai/deployments/my%20deployment%2F1/chat/completions?api-version=2024-10-21")
        #expect(plan.credential == .header(HeaderCredential(name: "api-key", prefix: "", source: Self.key)))
        #expect(plan.credentialHeader?.name == "api-key" && plan.credentialHeader?.prefix == "")
        // The model is in the path: an override alone leaves the body alone.
        #expect(!plan.rewritesBody)
        #expect(try AzureOpenAIAdapter.requestPlan(for: Self.attempt(backend, model: "gpt", stream: true)).rewritesBody)
    }

    /// The deployment is in the path, so the body keeps the client's `model` whether streamed or
    /// not; a stream only gains the usage request.
    @Test func azureBodiesKeepTheClientModelStreamedOrNot() throws {
        var backend = BackendConfig(name: "azure", schema: .azureOpenAI, credential: Self.key)
        backend.modelOverrides = ["gpt": "gpt4o-deployment"]
        let plain = Array(#"{"model":"gpt","messages":[]}"#.utf8)
        var attempt = Self.attempt(backend, model: "gpt")
        #expect(try AzureOpenAIAdapter.translateRequest(plain, attempt: &attempt) == plain)
        let streamed = Array(#"{"model":"gpt","stream":true,"messages":[]}"#.utf8)
        var streamedAttempt = Self.attempt(backend, model: "gpt", stream: true)
        let sent = try JSONParser.parse(AzureOpenAIAdapter.translateRequest(streamed, attempt: &streamedAttempt))
        #expect(sent["model"] == "gpt")
        #expect(sent["stream_options"]?["include_usage"] == true)
    }

    // MARK: - Anthropic

    @Test func anthropicPlan() throws {
        let backend = BackendConfig(name: "anthropic", schema: .anthropic, credential: Self.key)
        let native = try AnthropicAdapter.requestPlan(for: Self.attempt(backend, client: .anthropic, endpoint: .anthropicMessages))
        #expect(native.path == "/v1/messages")
        #expect(native.setHeaders.map { "\($0.name): \($0.value)" } == ["content-type: application/json", "anthropic-version: 2023-06-01"])
        #expect(native.credential == .header(HeaderCredential(name: "x-api-key", source: Self.key)))
        #expect(!native.rewritesBody)
        #expect(try AnthropicAdapter.requestPlan(for: Self.attempt(backend)).rewritesBody)
        #expect(throws: TranslateError.self) { try AnthropicAdapter.requestPlan(for: Self.attempt(backend, endpoint: .embeddings)) }
        do {
            _ = try AnthropicAdapter.requestPlan(for: Self.attempt(backend, endpoint: .completions))
            Issue.record("completions planned for Anthropic")
        } catch {
            #expect(error.status == 400 && error.code == "unsupported_endpoint")
        }
    }

    // MARK: - Gemini and Vertex

    @Test func geminiAPIPlan() throws {
        let backend = BackendConfig(name: "gemini", schema: .gemini, credential: Self.key)
        let chat = try GeminiAdapter.requestPlan(for: Self.attempt(backend, model: "gemini-2.5-flash"))
        #expect(chat.path == "/v1beta/models/gemini-2.5-flash:generateContent")
        #expect(chat.credential == .header(HeaderCredential(name: "x-goog-api-key", source: Self.key)))
        #expect(chat.rewritesBody)
        let stream = try GeminiAdapter.requestPlan(for: Self.attempt(backend, model: "gemini-2.5-flash", stream: true))
        #expect(stream.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
        let embeddings = try GeminiAdapter.requestPlan(for: Self.attempt(backend, endpoint: .embeddings, model: "text-embedding-004"))
        #expect(embeddings.path == "/v1beta/models/text-embedding-004:batchEmbedContents")
        #expect(throws: TranslateError.self) { try GeminiAdapter.requestPlan(for: Self.attempt(backend, endpoint: .completions)) }
    }

    @Test func vertexPlanUsesProjectLocationAndABearerToken() throws {
        var backend = BackendConfig(name: "vertex", schema: .vertexGemini, credential: Self.key)
        backend.gcp = GCPSettings(project: "proj", location: "europe-west4")
        let plan = try GeminiAdapter.requestPlan(for: Self.attempt(backend, model: "gemini-2.5-flash"))
        #expect(plan.path == "/v1/projects/proj/locations/europe-west4/publishers/google/models/gemini-2.5-flash:generateContent")
        #expect(plan.credential == .header(.bearer(Self.key)))
        // Vertex serves embeddings through another API.
        #expect(throws: TranslateError.self) { try GeminiAdapter.requestPlan(for: Self.attempt(backend, endpoint: .embeddings)) }
    }

    // MARK: - Bedrock: a signature instead of a header

    @Test func bedrockPlanIsSignedWithSigV4() throws {
        let backend = Self.bedrock(sessionToken: .value("token"))
        let plan = try BedrockConverseAdapter.requestPlan(for: Self.attempt(backend, model: "anthropic.claude-3:0"))
        #expect(plan.path == "/model/anthropic.claude-3%3A0/converse")
        #expect(plan.rewritesBody && plan.needsBody)
        #expect(plan.credentialHeader == nil)
        guard case .signature(.sigV4(let signing)) = plan.credential else {
            Issue.record("Bedrock credential is \(plan.credential)")
            return
        }
        #expect(signing.region == "eu-west-3" && signing.service == "bedrock" && signing.contentType == "application/json")
        #expect(plan.credential.sources == [.value("AKIDEXAMPLE"), .secret(name: "aws-secret", sds: .ads), .value("token")])
        let stream = try BedrockConverseAdapter.requestPlan(for: Self.attempt(backend, model: "m", stream: true))
        #expect(stream.path == "/model/m/converse-stream")
        #expect(throws: TranslateError.self) { try BedrockConverseAdapter.requestPlan(for: Self.attempt(backend, endpoint: .embeddings)) }
    }

    @Test func signatureIsSigV4OverTheFinalRequest() throws {
        let exchange = UpstreamExchange(
            backend: Self.bedrock(sessionToken: .value("token")), clientAPI: .openAI, endpoint: .chatCompletions,
            requestModel: "m", stream: false, includeUsage: false, created: 1, requestID: "r")
        guard case .signature(let signing) = try exchange.requestPlan().credential else {
            Issue.record("not signed")
            return
        }
        let body = Array(#"{"messages":[]}"#.utf8)
        let request = SignableRequest(method: "POST", host: "bedrock-runtime.eu-west-3.amazonaws.com", path: "/model/m/converse", body: body)
        let credentials: [[UInt8]?] = [Array("AKIDEXAMPLE".utf8), Array("secret".utf8), Array("token".utf8)]
        let headers = try exchange.signatureHeaders(signing, request: request, credentials: credentials, unixSeconds: 1_700_000_000)

        let signer = SigV4Signer(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "secret", sessionToken: "token", region: "eu-west-3")
        let expected = signer.sign(
            method: "POST", path: "/model/m/converse",
            headers: [("host", "bedrock-runtime.eu-west-3.amazonaws.com"), ("content-type", "application/json")],
            payload: body, date: SigV4Date(unixSeconds: 1_700_000_000))
        #expect(headers.map(\.name) == ["x-amz-date", "x-amz-content-sha256", "x-amz-security-token", "authorization"])
        #expect(headers.map(\.value) == expected.map(\.value))
        #expect(headers.last?.value.hasPrefix("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20231114/eu-west-3/bedrock/aws4_request") == true)

        // Another body, another signature.
        var other = request
        other.body = Array(#"{"messages":[1]}"#.utf8)
        let resigned = try exchange.signatureHeaders(signing, request: other, credentials: credentials, unixSeconds: 1_700_000_000)
        #expect(resigned.last?.value != headers.last?.value)
    }

    @Test func signatureCoversTheQuery() throws {
        let signing = SigV4Signing(region: "us-east-1", service: "bedrock", accessKeyID: .value("a"), secretAccessKey: .value("s"))
        let credentials: [[UInt8]?] = [Array("AKID".utf8), Array("secret".utf8), nil]
        func authorization(_ path: String) throws -> String? {
            try RequestSigning.sigV4(signing).headers(
                for: SignableRequest(method: "POST", host: "h", path: path, body: []), credentials: credentials,
                unixSeconds: 0, crypto: .pureSwift, backend: "b"
            ).last?.value
        }
        let signer = SigV4Signer(accessKeyID: "AKID", secretAccessKey: "secret", region: "us-east-1")
        let expected = signer.sign(
            method: "POST", path: "/p", query: "b=2&a=1", headers: [("host", "h"), ("content-type", "application/json")],
            payload: [], date: SigV4Date(unixSeconds: 0))
        #expect(try authorization("/p?b=2&a=1") == expected.last?.value)
        #expect(try authorization("/p?b=2&a=1") != authorization("/p"))
    }

    @Test func signingWithoutKeysFailsTheAttempt() throws {
        let exchange = UpstreamExchange(
            backend: Self.bedrock(), clientAPI: .openAI, endpoint: .chatCompletions, requestModel: "m", stream: false,
            includeUsage: false, created: 1, requestID: "r")
        guard case .signature(let signing) = try exchange.requestPlan().credential else {
            Issue.record("not signed")
            return
        }
        let request = SignableRequest(method: "POST", host: "h", path: "/model/m/converse", body: [])
        for credentials: [[UInt8]?] in [[Array("AKID".utf8), nil, nil], [Array("AKID".utf8), [], nil], [nil, Array("s".utf8), nil], []] {
            do {
                _ = try exchange.signatureHeaders(signing, request: request, credentials: credentials, unixSeconds: 0)
                Issue.record("signed without keys: \(credentials)")
            } catch {
                #expect(error.status == 500 && error.code == "backend_credential_missing")
                #expect(error.message == "The gateway has no AWS credentials for backend 'bedrock'.")
            }
        }
        // No session token configured: none is sent.
        let headers = try exchange.signatureHeaders(
            signing, request: request, credentials: [Array("AKID".utf8), Array("s".utf8), nil], unixSeconds: 0)
        #expect(!headers.contains { $0.name == "x-amz-security-token" })
    }

    // MARK: - Response headers

    @Test func bedrockReadsItsRequestIDAndErrorTypeHeaders() {
        #expect(BedrockConverseAdapter.responseHeaderNames == ["x-amzn-requestid", "x-amzn-errortype"])
        #expect(BedrockAnthropicAdapter.responseHeaderNames == BedrockConverseAdapter.responseHeaderNames)
        for schema in BackendSchema.allCases where schema != .bedrockConverse && schema != .bedrockAnthropic {
            #expect(schema.adapter.responseHeaderNames.isEmpty, "\(schema)")
        }
        var exchange = UpstreamExchange(
            backend: Self.bedrock(), clientAPI: .openAI, endpoint: .chatCompletions, requestModel: "m", stream: false,
            includeUsage: false, created: 1, requestID: "r")
        #expect(exchange.translateError(status: 400, body: []).body.containsBytes("bedrock_error"))
        exchange.noteResponseHeader(name: "x-amzn-requestid", value: "")
        #expect(exchange.context.fallbackResponseID == "chatcmpl-r")
        exchange.noteResponseHeader(name: "x-amzn-requestid", value: "req-1")
        exchange.noteResponseHeader(name: "x-amzn-errortype", value: "ThrottlingException:http://internal.amazon.com/")
        #expect(exchange.context.fallbackResponseID == "req-1")
        let error = exchange.translateError(status: 400, body: Array(#"{"message":"slow down"}"#.utf8))
        #expect(error.status == 400)
        #expect(error.body.containsBytes("throttling_exception") && error.body.containsBytes("slow down"))
    }

    // MARK: - Credential headers

    /// Every header a credential application can set is one the filter strips first, so a
    /// client's key or an earlier attempt's provider credential never travels on.
    @Test func strippedHeadersCoverEveryCredentialHeader() throws {
        let stripped = Set(UpstreamRequestPlan.credentialHeaders)
        #expect(stripped.count == UpstreamRequestPlan.credentialHeaders.count)
        #expect(stripped == ["authorization", "x-api-key", "api-key", "x-goog-api-key", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"])
        var vertex = BackendConfig(name: "v", schema: .vertexGemini, credential: Self.key)
        vertex.gcp = GCPSettings(project: "p", location: "l")
        var azure = BackendConfig(name: "a", schema: .azureOpenAI, credential: Self.key)
        azure.azureAPIVersion = "v"
        let backends = [
            BackendConfig(name: "o", schema: .openAI, credential: Self.key), azure,
            BackendConfig(name: "an", schema: .anthropic, credential: Self.key), Self.bedrock(sessionToken: Self.key),
            BackendConfig(name: "g", schema: .gemini, credential: Self.key), vertex,
            Self.vertexClaude(), Self.bedrockClaude(),
            BackendConfig(name: "c", schema: .cohere, credential: Self.key),
        ]
        // A new schema fails here until a backend of it is listed above.
        #expect(Set(backends.map(\.schema.rawValue)) == Set(BackendSchema.allCases.map(\.rawValue)))
        for backend in backends {
            let adapter = backend.schema.adapter
            switch adapter.credential(for: backend) {
            case .none:
                Issue.record("\(backend.schema) has no credential")
            case .header(let header):
                #expect(adapter.credentialHeaderNames.contains(header.name), "\(backend.schema)")
            case .signature(let signing):
                let headers = try signing.headers(
                    for: SignableRequest(method: "POST", host: "h", path: "/", body: []),
                    credentials: [Array("k".utf8), Array("s".utf8), Array("t".utf8)], unixSeconds: 0, crypto: .pureSwift,
                    backend: backend.name)
                for header in headers { #expect(adapter.credentialHeaderNames.contains(header.name), "\(header.name)") }
            }
            #expect(stripped.isSuperset(of: adapter.credentialHeaderNames))
        }
    }

    @Test func configuredSourcesIncludeEveryKey() {
        let bedrock = Self.bedrock(sessionToken: .value("t"))
        #expect(bedrock.configuredCredentialSources == [.value("AKIDEXAMPLE"), .secret(name: "aws-secret", sds: .ads), .value("t")])
        #expect(BackendConfig(name: "o", schema: .openAI).configuredCredentialSources.isEmpty)
        #expect(BackendConfig(name: "a", schema: .anthropic, credential: Self.key).configuredCredentialSources == [Self.key])
    }
}

extension [UInt8] {
    fileprivate func containsBytes(_ text: String) -> Bool {
        let needle = Array(text.utf8)
        guard needle.count <= count else { return false }
        return (0...(count - needle.count)).contains { Array(self[$0..<($0 + needle.count)]) == needle }
    }
}
