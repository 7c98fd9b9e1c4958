import Testing

@testable import SluiceCore

@Suite struct GatewayTests {
    let gateway = Gateway(
        config: GatewayConfig(
            apiKeys: [
                ClientKeyConfig(name: "demo", sha256: SHA256.hash("sk-sluice-demo")),
                ClientKeyConfig(name: "old", sha256: SHA256.hash("sk-old"), disabled: true),
            ],
            models: [ModelConfig(id: "gpt-4o-mini", ownedBy: "openai", created: 1)]))

    func head(_ method: String, _ path: String, auth: String? = nil, apiKey: String? = nil) -> RequestHead {
        RequestHead(
            method: Array(method.utf8), path: Array(path.utf8), authorization: auth.map { Array($0.utf8) },
            apiKey: apiKey.map { Array($0.utf8) })
    }

    func json(_ bytes: [UInt8]) throws -> JSONValue { try JSONParser.parse(bytes) }

    @Test func listsModelsForAValidKey() throws {
        guard case .reply(let reply, .modelsListed) = gateway.decide(head("GET", "/v1/models", auth: "Bearer sk-sluice-demo")) else {
            Issue.record("expected a local reply")
            return
        }
        #expect(reply.status == 200)
        let body = try json(reply.body)
        #expect(body["object"] == "list")
        #expect(body["data"]?.arrayValue?.first?["id"] == "gpt-4o-mini")
        #expect(body["data"]?.arrayValue?.first?["owned_by"] == "openai")
        #expect(body["data"]?.arrayValue?.first?["object"] == "model")
    }

    @Test(arguments: ["/v1/models?x=1", "/v1/models/"])
    func modelsPathVariants(path: String) {
        guard case .reply(_, .modelsListed) = gateway.decide(head("GET", path, auth: "Bearer sk-sluice-demo")) else {
            Issue.record("expected the model list for \(path)")
            return
        }
    }

    @Test(arguments: [
        (nil, nil, "missing_api_key"),
        ("Bearer sk-wrong", nil, "invalid_api_key"),
        ("Basic abc", nil, "missing_api_key"),
        ("Bearer", nil, "missing_api_key"),
        ("Bearer sk-old", nil, "api_key_disabled"),
        (nil, "sk-nope", "invalid_api_key"),
    ] as [(String?, String?, String)])
    func refusesWithOpenAIError(auth: String?, apiKey: String?, code: String) throws {
        guard case .reply(let reply, .unauthorized) = gateway.decide(head("POST", "/v1/chat/completions", auth: auth, apiKey: apiKey))
        else {
            Issue.record("expected 401")
            return
        }
        #expect(reply.status == 401)
        let body = try json(reply.body)
        #expect(body["error"]?["code"] == .string(code))
        #expect(body["error"]?["type"] == "invalid_request_error")
        #expect(body["error"]?["message"]?.stringValue?.isEmpty == false)
        #expect(reply.headers.contains { $0.name == "www-authenticate" })
        // The presented key never appears in the error.
        #expect(!String(decoding: reply.body, as: UTF8.self).contains("sk-"))
    }

    @Test func anthropicClientsGetAnthropicErrors() throws {
        guard case .reply(let reply, _) = gateway.decide(head("POST", "/v1/messages", apiKey: "bad")) else {
            Issue.record("expected 401")
            return
        }
        let body = try json(reply.body)
        #expect(body["type"] == "error")
        #expect(body["error"]?["type"] == "authentication_error")
    }

    @Test func forwardsWithEitherHeader() {
        #expect(
            gateway.decide(head("POST", "/v1/chat/completions", auth: "bearer  sk-sluice-demo ")) == .forward(
                consumer: Consumer(name: "demo"), endpoint: .chatCompletions))
        #expect(
            gateway.decide(head("POST", "/v1/messages", apiKey: "sk-sluice-demo")) == .forward(
                consumer: Consumer(name: "demo"), endpoint: .anthropicMessages))
    }

    @Test func endpointClassification() {
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/embeddings".utf8)) == .embeddings)
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/completions".utf8)) == .completions)
        #expect(Endpoint.classify(method: Array("POST".utf8), path: Array("/v1/models".utf8)) == .other)
        #expect(Endpoint.classify(method: Array("GET".utf8), path: []) == .other)
    }

    @Test func bearerTokenParsing() {
        #expect(ClientKeyExtractor.bearerToken(Array("Bearer abc".utf8)) == Array("abc".utf8))
        #expect(ClientKeyExtractor.bearerToken(Array("BEARER\tabc\t".utf8)) == Array("abc".utf8))
        #expect(ClientKeyExtractor.bearerToken(Array("Bearerabc".utf8)) == nil)
        #expect(ClientKeyExtractor.bearerToken(Array("Bearer    ".utf8)) == nil)
        #expect(ClientKeyExtractor.bearerToken([]) == nil)
    }
}
