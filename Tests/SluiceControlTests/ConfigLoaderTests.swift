// The loader's diagnostics: exact text and positions, did-you-mean, several errors at once.
import Foundation
import SluiceControl
import SluiceCore
import Testing

/// The diagnostics of a config the loader must refuse, as text.
func loadErrors(_ yaml: String, file: String = "sluice.yaml") -> [String] {
    do {
        _ = try SluiceConfig.load(yaml: yaml, file: file)
        Issue.record("the config was accepted")
        return []
    } catch {
        return error.diagnostics.map(\.description)
    }
}

/// A small valid config, and variations of it.
let minimalYAML = """
    backends:
      - name: openai
        schema: openai
        address: https://api.openai.com
        credential: { env: OPENAI_API_KEY }
    models:
      - { id: gpt-4o-mini, backend: openai }
    """

@Suite struct ConfigLoaderTests {
    @Test func aMinimalConfigLoadsWithDefaults() throws {
        let loaded = try SluiceConfig.load(yaml: minimalYAML)
        #expect(loaded.warnings.isEmpty)
        let config = loaded.config
        #expect(config.listeners == [SluiceConfig.Listener(name: "gateway", address: "127.0.0.1", port: 10000)])
        #expect(config.backends.count == 1)
        let backend = try #require(config.backends.first)
        #expect(backend.endpoints == [SluiceConfig.Endpoint(host: "api.openai.com", port: 443)])
        #expect(backend.tls && backend.tlsVerify)
        #expect(backend.credential == .environment("OPENAI_API_KEY"))
        #expect(config.models == [SluiceConfig.Model(id: "gpt-4o-mini", target: .backend("openai"), ownedBy: "openai")])
    }

    @Test func unknownFieldsAreNamedWithTheirPositionAndADidYouMean() {
        let yaml = """
            backends:
              - name: openai
                schema: openai
                address: https://api.openai.com
                credential: { evn: OPENAI_API_KEY }
            models:
              - { id: gpt-4o-mini, backend: openai, ownd_by: me }
            gateway: { max_request_bytes: 8388608, timout_seconds: 30 }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:5:19: backends[0].credential: unknown field 'evn'; did you mean 'env'?",
            "sluice.yaml:7:41: models[0]: unknown field 'ownd_by'; did you mean 'owned_by'?",
            "sluice.yaml:8:40: gateway: unknown field 'timout_seconds'; did you mean 'timeout_seconds'?",
        ].sorted(by: positionOrder))
    }

    @Test func aFieldFarFromEveryKnownNameListsTheKnownNames() {
        let yaml = minimalYAML + "\nlisteners:\n  - { name: gw, port: 8080, colour: blue }\n"
        #expect(loadErrors(yaml) == [
            "sluice.yaml:9:29: listeners[0]: unknown field 'colour'; expected one of: name, address, port, tls, access_log"
        ])
    }

    @Test func unknownNamesReferencedElsewhereGetADidYouMean() {
        let yaml = """
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com, credential: { env: OPENAI_API_KEY } }
              - { name: anthropic, schema: antropic, address: https://api.anthropic.com, credential: { env: ANTHROPIC_API_KEY } }
            models:
              - { id: gpt-4o-mini, backend: opena }
              - { id: claude-sonnet-4-6, fallback: [anthropic, openia] }
            consumers:
              - { name: ci, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, team: reserch, models: [gpt-4o-min] }
            teams:
              - { name: research }
            gateway: { default_backend: locl }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:3:32: backends[1].schema: unknown schema 'antropic'; did you mean 'anthropic'?",
            "sluice.yaml:5:33: models[0].backend: unknown backend 'opena'; did you mean 'openai'?",
            "sluice.yaml:6:52: models[1].fallback[1]: unknown backend 'openia'; did you mean 'openai'?",
            "sluice.yaml:8:101: consumers[0].team: unknown team 'reserch'; did you mean 'research'?",
            "sluice.yaml:8:119: consumers[0].models[0]: unknown model 'gpt-4o-min'; did you mean 'gpt-4o-mini'?",
            "sluice.yaml:11:29: gateway.default_backend: unknown backend 'locl'; expected a backend or pool: openai",
        ])
    }

    @Test func wrongTypesAndOutOfRangeNumbersSayWhatWouldBeRight() {
        let yaml = """
            listeners:
              - { name: gateway, port: "10000" }
              - { name: admin, port: 70000, access_log: yes please }
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com, default_max_tokens: 1.5 }
            models:
              - id: gpt-4o-mini
                backend: openai
                aliases: gpt-mini
                price: { input: -1, output: 2000000 }
                limits: { requests_per_minute: 0, budget_usd_per_day: 5 }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:2:28: listeners[0].port: expected an integer, got a string \"10000\"",
            "sluice.yaml:3:26: listeners[1].port: must be between 1 and 65535, got 70000",
            "sluice.yaml:3:45: listeners[1].access_log: expected true or false, got a string \"yes please\"",
            "sluice.yaml:5:90: backends[0].default_max_tokens: expected an integer, got 1.5",
            "sluice.yaml:9:14: models[0].aliases: expected a list of strings (like [a, b]), got a string \"gpt-mini\"",
            "sluice.yaml:10:21: models[0].price.input: must be between 0 and 1000000, got -1",
            "sluice.yaml:10:33: models[0].price.output: must be between 0 and 1000000, got 2000000",
            "sluice.yaml:11:36: models[0].limits.requests_per_minute: must be between 1 and 100000000, got 0",
        ])
    }

    @Test func duplicatesNameTheFirstDefinition() {
        let yaml = """
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com }
              - { name: openai, schema: openai, address: https://api.openai.com }
            pools:
              - { name: local, endpoints: [http://10.0.0.1:8000] }
            models:
              - { id: gpt-4o-mini, backend: openai }
              - { id: llama, backend: local, aliases: [gpt-4o-mini] }
            consumers:
              - { name: a, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 }
              - { name: a, key_sha256: 9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:3:13: backends[1].name: a backend or pool named 'openai' is already defined (line 2)",
            "sluice.yaml:8:44: models[1].aliases[0]: model 'gpt-4o-mini' is already defined (line 7)",
            "sluice.yaml:11:13: consumers[1].name: consumer 'a' is already defined (line 10)",
            "sluice.yaml:11:28: consumers[1].key_sha256: the same key is already given to consumer 'a' (line 10)",
        ])
    }

    @Test func fallbacksAndRoutingAreChecked() {
        let yaml = """
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com }
              - { name: groq, schema: openai, address: https://api.groq.com, path_prefix: /openai }
            models:
              - { id: a, fallback: [openai, groq, openai] }
              - { id: b, fallback: [openai] }
              - { id: c, backend: openai, fallback: [openai, groq] }
              - { id: d }
              - { id: e, upstream_model: x, overrides: { gorq: y }, fallback: [openai, groq] }
              - { id: claude-x }
            routes:
              - { model_prefix: claude-, backend: groq }
              - { headers: { x-tenant: a }, backend: openai }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:5:39: models[0].fallback[2]: names backend 'openai' twice; each backend appears once in a fallback",
            "sluice.yaml:6:24: models[1].fallback: lists backends tried in order and needs at least two; for one, say 'backend: openai'",
            "sluice.yaml:7:31: models[2].fallback: give either 'backend' or 'fallback', not both",
            "sluice.yaml:8:5: models[3]: model 'd' is routed to nothing: give it 'backend' or 'fallback', or add a rule to 'routes' that takes it",
            "sluice.yaml:9:46: models[4].overrides.gorq: 'gorq' is not a backend of this model; did you mean 'groq'?",
            "sluice.yaml:13:5: routes[1]: needs 'models' or 'model_prefix' (\"\" takes every model)",
        ])
    }

    @Test func credentialsAreReferencesAndDemoValuesStayOnLoopback() {
        let yaml = """
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com, credential: { demo_value: sk-real } }
              - { name: sim, schema: openai, address: http://127.0.0.1:18101, credential: { demo_value: sk-fake } }
              - { name: azure, schema: azure_openai, address: https://x.openai.azure.com, credential: { env: 1BAD } }
              - { name: anthropic, schema: anthropic, address: https://api.anthropic.com, credential: { env: A, file: /k } }
              - { name: gemini, schema: gemini, address: https://generativelanguage.googleapis.com }
            models:
              - { id: m, backend: sim }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:2:84: backends[0].credential.demo_value: a secret written in the config is accepted only for backends on loopback (the simulators' fake keys); reference the key with 'env', 'file' or 'sds'",
            "sluice.yaml:4:5: backends[2]: missing required field 'azure' (api_version) for schema azure_openai",
            "sluice.yaml:4:98: backends[2].credential.env: expected an environment variable name like OPENAI_API_KEY, got '1BAD'",
            "sluice.yaml:5:101: backends[3].credential.file: give only one of 'env', 'file', 'sds' and 'demo_value' (found 'env' and 'file')",
            "sluice.yaml:6:5: backends[4]: missing required field 'credential' for schema gemini (env, file or sds)",
        ])
    }

    @Test func addressesMustBeURLs() {
        let yaml = """
            backends:
              - { name: a, schema: openai, address: api.openai.com }
              - { name: b, schema: openai, address: "https://api.openai.com/openai/v1" }
              - { name: c, schema: openai, addresses: [http://10.0.0.1:8000, https://10.0.0.2] }
              - { name: d, schema: openai, address: ftp://x }
              - { name: e, schema: openai, address: "http://x:0" }
            models:
              - { id: m, backend: a }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:2:41: backends[0].address: expected a URL with a scheme, like https://api.openai.com or http://127.0.0.1:8000; got 'api.openai.com'",
            "sluice.yaml:3:41: backends[1].address: expected scheme, host and port only (like https://api.openai.com or http://127.0.0.1:8000); a server under a path takes 'path_prefix'",
            "sluice.yaml:4:66: backends[2].addresses[1]: mixes http and https; every address of a backend uses the same scheme",
            "sluice.yaml:5:41: backends[3].address: unsupported scheme 'ftp'; expected http or https (like https://api.openai.com or http://127.0.0.1:8000)",
            "sluice.yaml:6:41: backends[4].address: the port must be between 1 and 65535, got '0'",
        ])
    }

    @Test func providersWithOnePublicEndpointNeedNoAddress() throws {
        let yaml = """
            backends:
              - { name: anthropic, schema: anthropic, credential: { env: ANTHROPIC_API_KEY } }
              - { name: gemini, schema: gemini, credential: { env: GEMINI_API_KEY } }
              - { name: bedrock, schema: bedrock_converse, aws: { region: eu-west-1, access_key_id: { env: A }, secret_access_key: { env: B } } }
              - { name: vertex, schema: vertex_gemini, credential: { file: /run/token }, gcp: { project: p, location: europe-west4 } }
              - { name: vertex-global, schema: vertex_gemini, credential: { file: /run/token }, gcp: { project: p, location: global } }
            models:
              - { id: claude, backend: anthropic }
            """
        let backends = try SluiceConfig.load(yaml: yaml).config.backends
        #expect(backends.map { $0.endpoints.first?.host } == [
            "api.anthropic.com", "generativelanguage.googleapis.com", "bedrock-runtime.eu-west-1.amazonaws.com",
            "europe-west4-aiplatform.googleapis.com", "aiplatform.googleapis.com",
        ])
        #expect(backends.allSatisfy { $0.tls && $0.endpoints.first?.port == 443 })
        let plan = try SluiceConfig.load(yaml: yaml).config.compile()
        #expect(try parseUpstream(plan.cluster(named: "bedrock")?.upstreamFilterConfig).backends.first?.host == "bedrock-runtime.eu-west-1.amazonaws.com")
        #expect(plan.cluster(named: "anthropic")?.upstreamTLS == UpstreamTLSPlan(sni: "api.anthropic.com"))
        #expect(loadErrors("backends: [{ name: o, schema: openai }]\nmodels: [{ id: m, backend: o }]") == [
            "sluice.yaml:1:12: backends[0]: missing required field 'address' (like https://api.openai.com or http://127.0.0.1:8000)"
        ])
    }

    @Test func nullMeansLeftOut() throws {
        let config = try SluiceConfig.load(yaml: minimalYAML + "\nlisteners:\nconsumers:\n  - { name: a, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, team: ~, models: null }\n").config
        #expect(config.listeners.map(\.port) == [10000])
        #expect(config.consumers.first?.team == nil && config.consumers.first?.allowedModels == nil)
        #expect(loadErrors(minimalYAML + "\nconsumers:\n  - { name: a, key_sha256: !!str ~ }\n") == [
            "sluice.yaml:9:28: consumers[0].key_sha256: expected 64 hexadecimal characters (the key's SHA-256), got '~'"
        ])
    }

    @Test func yamlSyntaxErrorsHaveAPosition() {
        let errors = loadErrors("backends:\n  - { name: a\nmodels: []\n", file: "bad.yaml")
        #expect(errors.count == 1)
        #expect(errors.first?.hasPrefix("bad.yaml:3:") == true)
        #expect(errors.first?.contains("not valid YAML") == true)
        let duplicate = loadErrors("backends: []\nbackends: []\n")
        #expect(duplicate == ["sluice.yaml:1:1: a key is given twice in one mapping: 'backends'"])
        #expect(loadErrors("") == ["sluice.yaml: the config is empty; it needs at least 'backends' and 'models'"])
        #expect(loadErrors("- a\n") == ["sluice.yaml:1:1: expected a mapping (key: value), got a list"])
    }

    @Test func manyErrorsAreReportedUpToTheLimit() throws {
        var yaml = "backends:\n  - { name: openai, schema: openai, address: http://127.0.0.1:1 }\nmodels:\n"
        for index in 0..<25 { yaml += "  - { id: m\(index), backend: nope }\n" }
        do {
            _ = try SluiceConfig.load(yaml: yaml)
            Issue.record("accepted")
        } catch {
            #expect(error.diagnostics.count == ConfigLoadError.limit)
            #expect(error.omitted == 5)
            #expect(error.description.hasSuffix("... and 5 more errors"))
            #expect(error.diagnostics.first?.description == "sluice.yaml:4:24: models[0].backend: unknown backend 'nope'; expected a backend or pool: openai")
        }
    }

    @Test func aPlaintextKeyIsAWarning() throws {
        let loaded = try SluiceConfig.load(yaml: minimalYAML + "\nconsumers:\n  - { name: demo, key: sk-demo }\n")
        #expect(loaded.warnings.map(\.description) == [
            "sluice.yaml:9:24: warning: consumers[0].key: a plaintext key in the config is for demos; store its SHA-256 as 'key_sha256' instead (printf %s KEY | sha256sum)"
        ])
        #expect(loaded.config.consumers.first?.keySHA256 == SHA256.hash("sk-demo"))
    }

    @Test func consumersTakeDatesAndPatterns() throws {
        let yaml = minimalYAML + """

            consumers:
              - { name: a, key_sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08, expires_at: 2027-01-01, models: [gpt-*] }
              - { name: b, key_sha256: 60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752, expires_at: "2027-01-01T12:00:00Z", disabled: true }
              - { name: c, key_sha256: fd61a03af4f77d870fc21e05e7e80678095c92d808cfb3b5c279ee04c74aca13, expires_at: 1798761600 }
            """
        let consumers = try SluiceConfig.load(yaml: yaml).config.consumers
        #expect(consumers.map(\.expiresAt) == [1_798_761_600, 1_798_761_600 + 43_200, 1_798_761_600])
        #expect(consumers[0].allowedModels == ["gpt-*"])
        #expect(consumers[1].disabled)
        #expect(loadErrors(minimalYAML + "\nconsumers:\n  - { name: a, key_sha256: abc, expires_at: tomorrow, models: [\"*a*\"] }\n") == [
            "sluice.yaml:9:28: consumers[0].key_sha256: expected 64 hexadecimal characters (the key's SHA-256), got 'abc'",
            "sluice.yaml:9:45: consumers[0].expires_at: expected Unix seconds or a UTC date like 2027-01-01 or 2027-01-01T12:00:00Z, got a string \"tomorrow\"",
            "sluice.yaml:9:64: consumers[0].models[0]: must be a model name, or a prefix ending in a single '*' (like claude-*)",
        ])
    }

    @Test func theJWTBlockIsCheckedByTheModulesOwnRules() {
        let yaml = minimalYAML + "\ngateway:\n  jwt: { payload_header: \"x bad\", payload_metadata_key: jwt_payload }\n"
        #expect(loadErrors(yaml) == ["sluice.yaml:9:26: gateway.jwt.payload_header: must be an HTTP header name"])
    }

    @Test func aCredentialWithoutASourceSaysWhichSourcesThereAre() {
        let yaml = minimalYAML.replacingOccurrences(of: "{ env: OPENAI_API_KEY }", with: "{ sds_path: /x }")
        #expect(loadErrors(yaml) == ["sluice.yaml:5:17: backends[0].credential: 'sds_path' needs 'sds' (the secret's name)"])
        let empty = minimalYAML.replacingOccurrences(of: "{ env: OPENAI_API_KEY }", with: "{}")
        #expect(loadErrors(empty) == [
            "sluice.yaml:5:17: backends[0].credential: needs one of 'env', 'file', 'sds' or 'demo_value' (the secret itself never goes in the config)"
        ])
    }

    @Test func pricesLimitsAndOverridesMustAgree() {
        let yaml = """
            backends:
              - { name: azure, schema: azure_openai, address: https://x.openai.azure.com, credential: { env: K }, azure: { api_version: v1 }, model_overrides: { gpt-4o: prod } }
            models:
              - { id: gpt-4o, backend: azure, upstream_model: staging, price: { input: 1, output: 2 } }
            prices:
              gpt-4o: { input: 1, output: 2 }
              gpt-4o-mni: { input: 1, output: 2 }
            model_limits:
              gpt-4o-mini: { requests_per_minute: 10, tokens_per_hour: 5 }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:4:5: models[0]: model 'gpt-4o' is sent to backend 'azure' as 'staging', but that backend's model_overrides say 'prod'",
            "sluice.yaml:6:3: prices.gpt-4o: model 'gpt-4o' already has a price (line 4)",
            "sluice.yaml:7:3: prices.gpt-4o-mni: no model 'gpt-4o-mni' is listed or taken by a route; expected a listed model: gpt-4o",
            "sluice.yaml:9:3: model_limits.gpt-4o-mini: no model 'gpt-4o-mini' is listed or taken by a route; expected a listed model: gpt-4o",
            "sluice.yaml:9:43: model_limits.gpt-4o-mini: unknown field 'tokens_per_hour'; expected one of: requests_per_minute, tokens_per_minute, input_tokens_per_minute, output_tokens_per_minute, budget_usd_per_day, budget_usd_per_month, lease_failure",
        ])
    }

    @Test func aFileIsNamedByItsPath() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(UInt32.random(in: 0...UInt32.max)).yaml").path
        try Data((minimalYAML + "\nteams: [{ name: a, limit: {} }]\n").utf8).write(to: URL(fileURLWithPath: path))
        defer { try? FileManager.default.removeItem(atPath: path) }
        do {
            _ = try SluiceConfig.load(contentsOfFile: path)
            Issue.record("accepted")
        } catch {
            #expect(error.description == "\(path):8:20: teams[0]: unknown field 'limit'; did you mean 'limits'?")
        }
        do {
            _ = try SluiceConfig.load(contentsOfFile: path + ".missing")
            Issue.record("accepted")
        } catch {
            #expect(error.description == "\(path).missing: cannot read the file")
        }
    }

    @Test func poolsAreSelfHostedServers() throws {
        let yaml = """
            pools:
              - { name: llama, endpoints: [http://10.0.0.1:8000, http://10.0.0.2:8000] }
              - { name: bad, schema: bedrock_converse, endpoints: [http://10.0.0.3:8000] }
              - { name: empty, endpoints: [], address: http://10.0.0.4:8000 }
            models:
              - { id: llama-3, backend: llama }
            """
        #expect(loadErrors(yaml) == [
            "sluice.yaml:3:26: pools[1].schema: a pool's servers speak openai, anthropic or gemini; bedrock_converse is a cloud provider's API (a backend)",
            "sluice.yaml:4:31: pools[2].endpoints: must list at least one endpoint",
            "sluice.yaml:4:35: pools[2]: unknown field 'address'; a pool lists its servers under 'endpoints'",
        ].sorted(by: positionOrder))
        let pool = try #require(try SluiceConfig.load(yaml: "pools: [{ name: llama, endpoints: [http://10.0.0.1:8000] }]\nmodels: [{ id: m, backend: llama }]").config.backends.first)
        #expect(pool.kind == .pool && pool.schema == .openAI && pool.endpoints == [SluiceConfig.Endpoint(host: "10.0.0.1", port: 8000)])
    }

    @Test func namesFromOtherGatewaysGetAPointer() {
        let yaml = """
            backends:
              - { name: openai, schema: openai, api_base: https://api.openai.com, api_key: sk-x }
            models:
              - { model_name: gpt-4o, backend: openai }
            """
        let litellm = """
            backends:
              - { name: openai, schema: openai, address: https://api.openai.com/v1, credential: os.environ/OPENAI_API_KEY }
              - { name: groq, schema: openai, address: https://api.groq.com, credential: gsk-123 }
            models:
              - { id: gpt-4o, backend: openai, rpm: 10 }
            """
        #expect(loadErrors(litellm) == [
            "sluice.yaml:2:46: backends[0].address: drop the '/v1': the gateway sends each API's own path (/v1/chat/completions, ...)",
            "sluice.yaml:2:85: backends[0].credential: expected a mapping, got a string; write { env: OPENAI_API_KEY }",
            "sluice.yaml:3:78: backends[1].credential: expected a mapping, got a string; a credential names where the key is: { env: OPENAI_API_KEY }, { file: PATH } or { sds: NAME }; never the key itself",
            "sluice.yaml:5:36: models[0]: unknown field 'rpm'; limits go under 'limits': { requests_per_minute: N }",
        ])
        #expect(loadErrors(yaml) == [
            "sluice.yaml:2:37: backends[0]: unknown field 'api_base'; did you mean 'address'?",
            "sluice.yaml:2:71: backends[0]: unknown field 'api_key'; did you mean 'credential'? It names where the key is: { env: OPENAI_API_KEY }, { file: PATH } or { sds: NAME }",
            "sluice.yaml:4:7: models[0]: unknown field 'model_name'; did you mean 'id'?",
        ])
    }

    @Test func didYouMeanFindsCloseNamesOnly() {
        #expect(Spelling.suggestion(for: "evn", among: ["env", "file", "sds"]) == "env")
        #expect(Spelling.suggestion(for: "Schema", among: ["schema"]) == "schema")
        #expect(Spelling.suggestion(for: "modle_overrides", among: ["model_overrides", "models"]) == "model_overrides")
        #expect(Spelling.suggestion(for: "xyz", among: ["env", "file"]) == nil)
        #expect(Spelling.editDistance("kitten", "sitting") == 3)
        #expect(Spelling.editDistance("ab", "ba") == 1)
    }
}

/// Diagnostics sort by line, then column.
func positionOrder(_ a: String, _ b: String) -> Bool {
    func key(_ text: String) -> (Int, Int) {
        let parts = text.split(separator: ":")
        return (Int(parts[1]) ?? 0, Int(parts[2]) ?? 0)
    }
    return key(a) < key(b)
}
