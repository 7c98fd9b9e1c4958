// Compiling a config: the plan's resources, and the module configs read back by the module's
// own parsers (GatewayConfig.parse, UpstreamConfig.parse), so sluiced and the module agree.
@testable import SluiceControl
import SluiceCore
import Testing

/// Parses a `sluice_upstream` config as the module does.
func parseUpstream(_ bytes: [UInt8]?) throws -> UpstreamConfig {
    try UpstreamConfig.parse(try #require(bytes))
}

/// The JSON value of `bytes`.
func json(_ bytes: [UInt8]?) throws -> JSONValue {
    try JSONParser.parse(try #require(bytes))
}

let fullYAML = """
    listeners:
      - { name: public, address: 0.0.0.0, port: 8443, tls: { cert_file: /etc/sluice/tls.crt, key_file: /etc/sluice/tls.key } }
      - { name: local, port: 10000, access_log: false }
    backends:
      - { name: openai, schema: openai, address: https://api.openai.com, credential: { env: OPENAI_API_KEY } }
      - name: azure
        schema: azure_openai
        address: https://sluice.openai.azure.com
        credential: { file: /run/secrets/azure-key }
        azure: { api_version: "2024-10-21" }
        model_overrides: { gpt-4o: gpt-4o-prod }
      - { name: anthropic, schema: anthropic, address: "https://api.anthropic.com:8443", credential: { sds: anthropic-key, sds_path: /etc/envoy/anthropic.yaml }, default_max_tokens: 8192 }
      - name: bedrock
        schema: bedrock_converse
        address: https://bedrock-runtime.us-west-2.amazonaws.com
        aws: { region: us-west-2, access_key_id: { env: AWS_ACCESS_KEY_ID }, secret_access_key: { env: AWS_SECRET_ACCESS_KEY }, session_token: { file: /run/aws-token } }
      - { name: groq, schema: openai, address: https://api.groq.com, path_prefix: /openai, credential: { env: GROQ_API_KEY }, http2: true }
    pools:
      - { name: vllm, endpoints: [http://10.0.0.1:8000, http://10.0.0.2:8000] }
    models:
      - { id: gpt-4o, fallback: [openai, azure], aliases: [gpt4o], owned_by: openai, created: 1715367049, price: { input: 2.5, output: 10 }, limits: { requests_per_minute: 1000 } }
      - { id: llama-3-70b, backend: vllm, upstream_model: meta-llama/Meta-Llama-3-70B-Instruct }
      - { id: claude-haiku, backend: bedrock, upstream_model: "anthropic.claude-3-5-haiku-20241022-v1:0" }
      - { id: listed-only }
    routes:
      - { models: [gpt-4o], headers: { X-Tenant: eu }, backend: azure }
      - { model_prefix: claude-, backend: anthropic }
      - { models: [listed-only, mixtral], backend: groq }
    consumers:
      - { name: ci, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, team: research, models: [gpt-4o, claude-*], expires_at: 2027-01-01, limits: { budget_usd_per_day: 2.5 } }
      - { name: old, key_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752, disabled: true }
    teams:
      - { name: research, limits: { tokens_per_minute: 200000, budget_usd_per_month: 500 } }
    prices:
      claude-sonnet-4-5: { input: 3, cached_input: 0.3, cache_write: 3.75, output: 15 }
    model_limits:
      mixtral: { tokens_per_minute: 100000 }
    gateway:
      max_request_bytes: 1048576
      response_cost_header: X-Sluice-Cost-USD
      default_output_tokens_estimate: 512
      timeout_seconds: 120
      default_backend: vllm
      jwt: { payload_header: x-sluice-jwt-payload, payload_metadata_key: jwt_payload, team_claim: team, limits: { tokens_per_minute: 1000 } }
    """

@Suite struct ConfigCompileTests {
    static func plan(databaseConsumers: [ConsumerSpec] = [], databaseTeams: [TeamSpec] = []) throws -> EnvoyPlan {
        let loaded = try SluiceConfig.load(yaml: fullYAML)
        #expect(loaded.warnings.isEmpty)
        return try loaded.config.compile(databaseConsumers: databaseConsumers, databaseTeams: databaseTeams)
    }

    @Test func listenersRoutesAndClusters() throws {
        let plan = try Self.plan()
        #expect(plan.validate().isEmpty)
        #expect(plan.listeners.map(\.name) == ["public", "local"])
        #expect(plan.listeners[0].address == "0.0.0.0" && plan.listeners[0].port == 8443)
        #expect(plan.listeners[0].tls == ListenerTLSPlan(certificateChainPath: "/etc/sluice/tls.crt", privateKeyPath: "/etc/sluice/tls.key"))
        #expect(plan.listeners[1].address == "127.0.0.1" && !plan.listeners[1].accessLog && plan.listeners[1].tls == nil)
        let routes = plan.listeners[0].routes
        #expect(routes.map(\.routeName) == ["openai", "azure", "anthropic", "bedrock", "groq", "vllm", "fallback-openai-azure", nil])
        #expect(routes.map(\.cluster) == ["openai", "azure", "anthropic", "bedrock", "groq", "vllm", "fallback-openai-azure", "vllm"])
        #expect(routes.allSatisfy { $0.timeoutSeconds == 120 })
        #expect(routes[6].retry == RetryPlan(numRetries: 2))
        #expect(routes.filter { $0.retry != nil }.count == 1)
        #expect(plan.listeners[1].routes == routes)

        let openai = try #require(plan.cluster(named: "openai"))
        #expect(openai.kind == .endpoints([EndpointPlan(host: "api.openai.com", port: 443)]))
        #expect(openai.upstreamTLS == UpstreamTLSPlan(sni: "api.openai.com"))
        #expect(openai.usesDNS && !openai.http2)
        #expect(try #require(plan.cluster(named: "groq")).http2)
        let anthropic = try #require(plan.cluster(named: "anthropic"))
        #expect(anthropic.kind == .endpoints([EndpointPlan(host: "api.anthropic.com", port: 8443)]))
        let vllm = try #require(plan.cluster(named: "vllm"))
        #expect(vllm.kind == .endpoints([EndpointPlan(host: "10.0.0.1", port: 8000), EndpointPlan(host: "10.0.0.2", port: 8000)]))
        #expect(vllm.upstreamTLS == nil && !vllm.usesDNS)

        // The fallback: member clusters whose hosts name their backend, and the aggregate over them.
        let member = try #require(plan.cluster(named: "fallback-openai-azure-azure"))
        #expect(member.kind == .endpoints([EndpointPlan(host: "sluice.openai.azure.com", port: 443, backend: "azure")]))
        #expect(member.upstreamTLS == UpstreamTLSPlan(sni: "sluice.openai.azure.com") && member.upstreamFilterConfig == nil)
        let aggregate = try #require(plan.cluster(named: "fallback-openai-azure"))
        #expect(aggregate.kind == .aggregate(["fallback-openai-azure-openai", "fallback-openai-azure-azure"]))
        #expect(aggregate.secretNames == ["openai-key", "azure-key"])
        let upstream = try parseUpstream(aggregate.upstreamFilterConfig)
        #expect(upstream.backends.map(\.name) == ["openai", "azure"])
        #expect(upstream.backend(named: "azure")?.upstreamModel(for: "gpt-4o") == "gpt-4o-prod")
        #expect(upstream.backend(named: "openai")?.upstreamModel(for: "gpt4o") == "gpt-4o")
    }

    @Test func credentialsBecomeSecretsServedOverADS() throws {
        let plan = try Self.plan()
        #expect(plan.secrets == [
            SecretPlan(name: "openai-key", source: .environment("OPENAI_API_KEY")),
            SecretPlan(name: "azure-key", source: .file("/run/secrets/azure-key")),
            SecretPlan(name: "bedrock-aws-access-key-id", source: .environment("AWS_ACCESS_KEY_ID")),
            SecretPlan(name: "bedrock-aws-secret-access-key", source: .environment("AWS_SECRET_ACCESS_KEY")),
            SecretPlan(name: "bedrock-aws-session-token", source: .file("/run/aws-token")),
            SecretPlan(name: "groq-key", source: .environment("GROQ_API_KEY")),
        ])
        #expect(try json(plan.cluster(named: "openai")?.upstreamFilterConfig)["credential"] == ["secret": "openai-key", "sds": "ads"])
        // An sds reference names a secret Envoy gets on its own: not served, not in the plan.
        #expect(try json(plan.cluster(named: "anthropic")?.upstreamFilterConfig)["credential"] == [
            "secret": "anthropic-key", "sds_path": "/etc/envoy/anthropic.yaml",
        ])
        #expect(plan.cluster(named: "anthropic")?.secretNames == [])
        #expect(plan.cluster(named: "bedrock")?.secretNames == [
            "bedrock-aws-access-key-id", "bedrock-aws-secret-access-key", "bedrock-aws-session-token",
        ])
        #expect(plan.cluster(named: "vllm")?.secretNames == [])
    }

    @Test func upstreamConfigsReadBackByTheModule() throws {
        let plan = try Self.plan()
        for cluster in plan.clusters where cluster.upstreamFilterConfig != nil {
            _ = try parseUpstream(cluster.upstreamFilterConfig)
        }
        let anthropic = try #require(try parseUpstream(plan.cluster(named: "anthropic")?.upstreamFilterConfig).backends.first)
        #expect(anthropic.schema == .anthropic && anthropic.defaultMaxTokens == 8192)
        #expect(anthropic.host == "api.anthropic.com:8443")
        let bedrock = try #require(try parseUpstream(plan.cluster(named: "bedrock")?.upstreamFilterConfig).backends.first)
        #expect(bedrock.aws?.region == "us-west-2" && bedrock.aws?.sessionToken != nil)
        #expect(bedrock.upstreamModel(for: "claude-haiku") == "anthropic.claude-3-5-haiku-20241022-v1:0")
        #expect(bedrock.host == "bedrock-runtime.us-west-2.amazonaws.com")
        let groq = try #require(try parseUpstream(plan.cluster(named: "groq")?.upstreamFilterConfig).backends.first)
        #expect(groq.pathPrefix == "/openai" && groq.host == "api.groq.com")
        let vllm = try #require(try parseUpstream(plan.cluster(named: "vllm")?.upstreamFilterConfig).backends.first)
        #expect(vllm.schema == .openAI && vllm.credential == nil && vllm.host == nil)
        #expect(vllm.upstreamModel(for: "llama-3-70b") == "meta-llama/Meta-Llama-3-70B-Instruct")
        let azure = try #require(try parseUpstream(plan.cluster(named: "azure")?.upstreamFilterConfig).backends.first)
        #expect(azure.azureAPIVersion == "2024-10-21" && azure.modelOverrides == ["gpt-4o": "gpt-4o-prod", "gpt4o": "gpt-4o-prod"])
    }

    @Test func theGatewayFilterConfigReadsBackByTheModule() throws {
        let gateway = try GatewayConfig.parse(try Self.plan().gatewayFilterConfig)
        #expect(gateway.maxRequestBytes == 1_048_576)
        #expect(gateway.responseCostHeader == "x-sluice-cost-usd")
        #expect(gateway.defaultOutputTokensEstimate == 512)
        #expect(gateway.jwt?.payloadHeader == "x-sluice-jwt-payload" && gateway.jwt?.teamClaim == "team")
        #expect(gateway.jwt?.limits == QuotaLimits(tokensPerMinute: 1000))

        #expect(gateway.apiKeys.map(\.name) == ["ci", "old"])
        let ci = gateway.apiKeys[0]
        #expect(ci.sha256.hex == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        #expect(ci.team == "research" && ci.expiresAt == 1_798_761_600 && !ci.revoked)
        #expect(ci.allowedModels == ModelPatterns(["gpt-4o", "claude-*"]))
        #expect(ci.limits == QuotaLimits(budgetMicrosPerDay: 2_500_000))
        #expect(gateway.apiKeys[1].revoked)
        #expect(gateway.teamLimits == ["research": QuotaLimits(tokensPerMinute: 200_000, budgetMicrosPerMonth: 500_000_000)])
        #expect(gateway.modelLimits == [
            "gpt-4o": QuotaLimits(requestsPerMinute: 1000), "gpt4o": QuotaLimits(requestsPerMinute: 1000),
            "mixtral": QuotaLimits(tokensPerMinute: 100_000),
        ])
        #expect(gateway.prices.price(for: "gpt4o") == ModelPrice(inputMicrosPerMillion: 2_500_000, outputMicrosPerMillion: 10_000_000))
        #expect(gateway.prices.price(for: "claude-sonnet-4-5") == ModelPrice(
            inputMicrosPerMillion: 3_000_000, cachedInputMicrosPerMillion: 300_000, cacheWriteMicrosPerMillion: 3_750_000,
            outputMicrosPerMillion: 15_000_000))
        #expect(gateway.models.map(\.id) == ["gpt-4o", "gpt4o", "llama-3-70b", "claude-haiku", "listed-only"])
        #expect(gateway.models.map(\.ownedBy) == ["openai", "openai", "vllm", "bedrock", "sluice"])
    }

    @Test func routingHeaderRulesFirstThenModelsThenTheOtherRules() throws {
        let gateway = try GatewayConfig.parse(try Self.plan().gatewayFilterConfig)
        let router = ModelRouter(gateway.routingRules)
        func route(_ model: String, tenant: String? = nil) -> String? {
            router.route(model: model) { $0 == "x-tenant" ? tenant : nil }
        }
        #expect(route("gpt-4o") == "fallback-openai-azure")
        #expect(route("gpt-4o", tenant: "eu") == "azure")
        #expect(route("gpt4o") == "fallback-openai-azure")
        #expect(route("llama-3-70b", tenant: "eu") == "vllm")
        #expect(route("claude-haiku") == "bedrock")  // a listed model beats a prefix rule
        #expect(route("claude-sonnet-4-5") == "anthropic")
        #expect(route("listed-only") == "groq")
        #expect(route("mixtral") == "groq")
        #expect(route("unknown") == nil)
    }

    @Test func theDatabaseConsumersAndTeamsMergeIn() throws {
        let database = [
            ConsumerSpec(name: "ci", keySHA256: SHA256.hash("rotated"), team: "research", source: .database),
            ConsumerSpec(name: "new", keySHA256: SHA256.hash("new"), team: "ops", source: .database),
        ]
        let plan = try Self.plan(databaseConsumers: database, databaseTeams: [TeamSpec(name: "ops", limits: QuotaLimits(requestsPerMinute: 5), source: .database)])
        let gateway = try GatewayConfig.parse(plan.gatewayFilterConfig)
        #expect(gateway.apiKeys.map(\.name) == ["ci", "old", "new"])
        #expect(gateway.apiKeys[0].sha256 == SHA256.hash("rotated") && gateway.apiKeys[0].allowedModels == nil)
        #expect(gateway.teamLimits["ops"] == QuotaLimits(requestsPerMinute: 5))

        let clash = [ConsumerSpec(name: "dup", keySHA256: SHA256Digest(hex: "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752")!, source: .database)]
        #expect(throws: ConfigCompileError(problems: ["consumers 'old' and 'dup' have the same key", "the sluice filter refuses its generated config: api_keys[2]: the same key is configured twice"])) {
            try Self.plan(databaseConsumers: clash)
        }
    }

    @Test func aMinimalConfigCompilesToExactlyThis() throws {
        let plan = try SluiceConfig.load(yaml: minimalYAML).config.compile()
        #expect(plan.listeners == [
            ListenerPlan(name: "gateway", address: "127.0.0.1", port: 10000, routes: [RoutePlan(routeName: "openai", cluster: "openai")])
        ])
        #expect(plan.secrets == [SecretPlan(name: "openai-key", source: .environment("OPENAI_API_KEY"))])
        #expect(plan.clusters.count == 1)
        #expect(String(decoding: plan.clusters[0].upstreamFilterConfig ?? [], as: UTF8.self)
            == #"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"},"host":"api.openai.com"}"#)
        #expect(String(decoding: plan.gatewayFilterConfig, as: UTF8.self)
            == #"{"api_keys":[],"models":[{"id":"gpt-4o-mini","owned_by":"openai","created":0,"route":"openai"}],"#
            + #""metadata_keys":["consumer","model","route","backend","input_tokens","output_tokens","cost_usd"]}"#)
    }

    /// The filter writes the metadata the access log prints, and none when no listener logs: each
    /// key is an edit Envoy makes per request.
    @Test func theFilterWritesOnlyTheMetadataAnAccessLogReads() throws {
        let logged = try SluiceConfig.load(yaml: minimalYAML).config.compile()
        let keys = try GatewayConfig.parse(logged.gatewayFilterConfig).metadataKeys
        #expect(keys.keys.map { $0.name.description }.sorted() == AccessLog.metadataKeys.sorted())
        // Every key the format prints is one the filter knows.
        #expect(AccessLog.metadataKeys.allSatisfy { FilterMetadataKey(name: $0) != nil })
        let quiet = try SluiceConfig.load(yaml: minimalYAML + "\nlisteners:\n  - { name: gateway, port: 10000, access_log: false }\n")
            .config.compile()
        #expect(try GatewayConfig.parse(quiet.gatewayFilterConfig).metadataKeys.isEmpty)
        #expect(quiet.listeners.allSatisfy { !$0.accessLog })
    }

    @Test func dollarsAreWrittenExactly() {
        #expect(ConfigCompilerProbe.dollars(75_000) == "0.075")
        #expect(ConfigCompilerProbe.dollars(5_000_000) == "5")
        #expect(ConfigCompilerProbe.dollars(1_000_001) == "1.000001")
        #expect(ConfigCompilerProbe.dollars(0) == "0")
    }
}

@Suite struct ResponsesAPIConfigTests {
    @Test func aServerWithoutTheResponsesAPIIsRenderedForTheModule() throws {
        let plan = try SluiceConfig.load(yaml: """
            pools:
              - { name: sglang, endpoints: [http://10.0.0.1:30000], responses_api: false }
              - { name: vllm, endpoints: [http://10.0.0.2:8000] }
            models:
              - { id: qwen, backend: sglang }
              - { id: llama, backend: vllm }
            """).config.compile()
        #expect(try parseUpstream(plan.cluster(named: "sglang")?.upstreamFilterConfig).backend(named: nil)?.servesResponses == false)
        #expect(try parseUpstream(plan.cluster(named: "vllm")?.upstreamFilterConfig).backend(named: nil)?.servesResponses == true)
        #expect(
            loadErrors("""
                backends: [{ name: claude, schema: anthropic, credential: { env: K }, responses_api: false }]
                models: [{ id: c, backend: claude }]
                """).contains { $0.contains("backends[0].responses_api: applies only to schema openai") })
    }
}
