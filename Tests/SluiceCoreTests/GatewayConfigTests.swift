import Testing

@testable import SluiceCore

@Suite struct GatewayConfigTests {
    @Test func parsesKeysAndModels() throws {
        let config = try GatewayConfig.parse(Array("""
            {"api_keys":[{"name":"demo","key":"sk-sluice-demo"},
                         {"name":"ci","key_sha256":"\(SHA256.hash("sk-ci").hex)","disabled":true,"team":"t",
                          "models":["gpt-4o","claude-*"],"expires_at":1798761600}],
             "models":[{"id":"gpt-4o-mini","owned_by":"openai","created":1721172741},{"id":"local"}]}
            """.utf8))
        #expect(config.apiKeys.map(\.name) == ["demo", "ci"])
        #expect(config.apiKeys[0].sha256 == SHA256.hash("sk-sluice-demo"))
        #expect(config.apiKeys[1].sha256 == SHA256.hash("sk-ci"))
        #expect(config.apiKeys[1].revoked)
        #expect(config.apiKeys[1].team == "t")
        #expect(config.apiKeys[1].expiresAt == 1798761600)
        #expect(config.apiKeys[1].allowedModels?.matches("claude-haiku") == true)
        #expect(config.apiKeys[1].allowedModels?.matches("gpt-4o-mini") == false)
        #expect(config.apiKeys[0].allowedModels == nil)
        #expect(config.models == [ModelConfig(id: "gpt-4o-mini", ownedBy: "openai", created: 1721172741), ModelConfig(id: "local")])
    }

    @Test func emptyConfigIsValid() throws {
        let config = try GatewayConfig.parse(Array("{}".utf8))
        #expect(config.apiKeys.isEmpty && config.models.isEmpty)
    }

    /// Every invalid config names the field at fault.
    @Test(arguments: [
        (#"{"api_keys":[{"name":"a","kee":"x"}]}"#, "api_keys[0]: needs one of 'key' or 'key_sha256'"),
        (#"{"api_keys":[{"name":"a","key":"x","extra":1}]}"#, "api_keys[0].extra: unknown field"),
        (#"{"api_keys":[{"name":"a","key":7}]}"#, "api_keys[0].key: expected a string, got number"),
        (#"{"api_keys":[{"name":"","key":"x"}]}"#, "api_keys[0].name: must not be empty"),
        (#"{"api_keys":[{"key":"x"}]}"#, "api_keys[0].name: is required"),
        (#"{"api_keys":[{"name":"a","key":"x","key_sha256":"00"}]}"#, "api_keys[0]: has both 'key' and 'key_sha256'; give only one"),
        (#"{"api_keys":[{"name":"a","key_sha256":"zz"}]}"#, "api_keys[0].key_sha256: expected 64 hexadecimal characters"),
        (#"{"api_keys":[{"name":"a","key":"x"},{"name":"a","key":"y"}]}"#, "api_keys[1].name: duplicate key name 'a'"),
        (#"{"api_keys":[{"name":"a","key":"x"},{"name":"b","key":"x"}]}"#, "api_keys[1]: the same key is configured twice"),
        (#"{"api_keys":{"name":"a"}}"#, "api_keys: expected an array, got object"),
        (#"{"models":[{"id":"m","created":-1}]}"#, "models[0].created: must be between 0 and 8589934588, got -1"),
        (#"{"models":[{"id":"m"},{"id":"m"}]}"#, "models[1].id: duplicate model id 'm'"),
        (#"{"modles":[]}"#, "modles: unknown field"),
        (#"{"api_keys":[{"name":"a","key":"x","models":["gp*t"]}]}"#, "api_keys[0].models[0]: must be a model name, or a prefix ending in a single '*'"),
        (#"{"api_keys":[{"name":"a","key":"x","expires_at":"tomorrow"}]}"#, #"api_keys[0].expires_at: expected an integer, got string "tomorrow""#),
        (#"[]"#, "expected an object, got array"),
    ])
    func rejectsWithFieldPath(json: String, message: String) {
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(Array(json.utf8)) }
        do {
            _ = try GatewayConfig.parse(Array(json.utf8))
        } catch {
            #expect(error.message == message)
        }
    }

    @Test func invalidJSONSaysWhere() {
        do {
            _ = try GatewayConfig.parse(Array(#"{"api_keys": [}"#.utf8))
            Issue.record("expected an error")
        } catch {
            #expect(error.message.hasPrefix("filter_config is not valid JSON"))
            #expect(error.message.contains("byte"))
        }
    }
}

@Suite struct ConfigNumberTests {
    /// Envoy's YAML -> Struct conversion can deliver `3.0` as the string "3.0".
    @Test func decimalStringsFromEnvoysYAMLAreNumbers() throws {
        let config = try GatewayConfig.parse(Array(#"{"prices":{"m":{"input":"3.0","output":15}}}"#.utf8))
        #expect(config.prices.price(for: "m")?.inputMicrosPerMillion == 3_000_000)
        #expect(throws: ConfigError.self) { try GatewayConfig.parse(Array(#"{"prices":{"m":{"input":"three","output":1}}}"#.utf8)) }
    }
}
