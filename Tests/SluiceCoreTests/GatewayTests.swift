import Testing

@testable import SluiceCore

@Suite struct GatewayTests {
    let gateway = Gateway(
        config: GatewayConfig(
            apiKeys: [
                ClientKeyConfig(name: "demo", sha256: SHA256.hash("sk-sluice-demo")),
                ClientKeyConfig(name: "old", sha256: SHA256.hash("sk-old"), revoked: true),
                ClientKeyConfig(name: "temp", sha256: SHA256.hash("sk-temp"), expiresAt: 1_000),
                ClientKeyConfig(
                    name: "limited", sha256: SHA256.hash("sk-limited"), team: "research",
                    allowedModels: ModelPatterns(["gpt-4o-mini", "claude-*"])),
            ],
            models: [ModelConfig(id: "gpt-4o-mini", ownedBy: "openai", created: 1, route: "openai")],
            routes: [RouteRule(name: "anthropic", modelPrefix: "claude-"), RouteRule(name: "other", modelPrefix: "")]))

    func head(_ method: String, _ path: String, auth: String? = nil, apiKey: String? = nil) -> RequestHead {
        RequestHead(
            method: Array(method.utf8), path: Array(path.utf8), authorization: auth.map { Array($0.utf8) },
            apiKey: apiKey.map { Array($0.utf8) })
    }

    func json(_ bytes: [UInt8]) throws -> JSONValue { try JSONParser.parse(bytes) }

    @Test func listsModelsForAValidKey() throws {
        guard case .listModels(let reply, _) = gateway.decide(head("GET", "/v1/models", auth: "Bearer sk-sluice-demo")) else {
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
        guard case .listModels = gateway.decide(head("GET", path, auth: "Bearer sk-sluice-demo")) else {
            Issue.record("expected the model list for \(path)")
            return
        }
    }

    @Test(arguments: [
        (nil, nil, "missing_api_key"),
        ("Bearer sk-wrong", nil, "invalid_api_key"),
        ("Basic abc", nil, "missing_api_key"),
        ("Bearer", nil, "missing_api_key"),
        ("Bearer sk-old", nil, "api_key_revoked"),
        ("Bearer sk-temp", nil, "api_key_expired"),
        (nil, "sk-nope", "invalid_api_key"),
    ] as [(String?, String?, String)])
    func refusesWithOpenAIError(auth: String?, apiKey: String?, code: String) throws {
        guard case .reply(let reply, .unauthorized) = gateway.decide(head("POST", "/v1/chat/completions", auth: auth, apiKey: apiKey), now: 2_000)
        else {
            Issue.record("expected 401")
            return
        }
        #expect(reply.status == 401)
        let body = try json(reply.body)
        #expect(body["error"]?["code"] == JSONValue.string(code))
        #expect(body["error"]?["type"] == "invalid_request_error")
        #expect(body["error"]?["message"]?.stringValue?.isEmpty == false)
        #expect(reply.headers.contains { $0.name == "www-authenticate" })
        // The presented key never appears in the error.
        #expect(!String(decoding: reply.body, as: UTF8.self).contains("sk-"))
    }

    @Test func keysExpireAtTheirTime() {
        #expect(gateway.decide(head("POST", "/v1/chat/completions", auth: "Bearer sk-temp"), now: 999) == .forward(
            consumer: Consumer(name: "temp"), endpoint: .chatCompletions))
        guard case .reply(_, .unauthorized) = gateway.decide(head("POST", "/v1/chat/completions", auth: "Bearer sk-temp"), now: 1_000) else {
            Issue.record("expected 401 at the expiry second")
            return
        }
    }

    @Test func allowedModelsAreEnforcedWith403() throws {
        guard case .forward(let consumer, _) = gateway.decide(head("POST", "/v1/chat/completions", auth: "Bearer sk-limited")) else {
            Issue.record("expected the key to be accepted")
            return
        }
        #expect(consumer.team == "research")
        let ok = gateway.route(body: Array(#"{"model":"claude-opus-4"}"#.utf8), endpoint: .chatCompletions, consumer: consumer) { _ in nil }
        #expect((try? ok.get())?.route == "anthropic")
        let refused = gateway.route(body: Array(#"{"model":"gpt-4o"}"#.utf8), endpoint: .chatCompletions, consumer: consumer) { _ in nil }
        guard case .failure(let error) = refused else {
            Issue.record("expected 403")
            return
        }
        #expect(error.status == 403 && error.code == "model_not_allowed")
        #expect(try JSONParser.parse(error.body(for: .anthropic))["error"]?["type"] == "permission_error")
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
