// The gateway filter's configuration (`filter_config` of the `sluice` HTTP filter), as JSON.
//
// {
//   "api_keys": [ { "name": "demo", "key": "sk-sluice-demo" },
//                 { "name": "ci", "key_sha256": "<64 hex chars>", "disabled": false } ],
//   "models":   [ { "id": "gpt-4o-mini", "owned_by": "openai", "created": 1715367049 } ]
// }

/// One client key as configured. A plaintext `key` is hashed at load and never kept.
public struct ClientKeyConfig: Sendable, Equatable {
    public var name: String
    public var sha256: SHA256Digest
    public var disabled: Bool

    public init(name: String, sha256: SHA256Digest, disabled: Bool = false) {
        self.name = name
        self.sha256 = sha256
        self.disabled = disabled
    }
}

/// One model listed by `GET /v1/models`.
public struct ModelConfig: Sendable, Equatable {
    public var id: String
    public var ownedBy: String
    public var created: Int64

    public init(id: String, ownedBy: String = "sluice", created: Int64 = 0) {
        self.id = id
        self.ownedBy = ownedBy
        self.created = created
    }
}

public struct GatewayConfig: Sendable, Equatable {
    public var apiKeys: [ClientKeyConfig]
    public var models: [ModelConfig]

    public init(apiKeys: [ClientKeyConfig] = [], models: [ModelConfig] = []) {
        self.apiKeys = apiKeys
        self.models = models
    }

    /// Parses and validates `filter_config` bytes; the error names the offending field.
    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> GatewayConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(path: "", problem: "filter_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        var config = GatewayConfig()

        var keyNames: Set<String> = []
        var keyHashes: Set<SHA256Digest> = []
        try root.forEachObject("api_keys") { (entry: inout ConfigObject) throws(ConfigError) in
            let name = try entry.nonEmptyString("name")
            let plaintext = try entry.optionalString("key")
            let hashed = try entry.optionalString("key_sha256")
            let digest: SHA256Digest
            switch (plaintext, hashed) {
            case (let key?, nil):
                guard !key.isEmpty else { throw ConfigError(path: entry.childPath("key"), problem: "must not be empty") }
                digest = SHA256.hash(key)
            case (nil, let hex?):
                guard let parsed = SHA256Digest(hex: hex) else {
                    throw ConfigError(path: entry.childPath("key_sha256"), problem: "expected 64 hexadecimal characters")
                }
                digest = parsed
            case (nil, nil):
                throw ConfigError(path: entry.path, problem: "needs one of 'key' or 'key_sha256'")
            case (_?, _?):
                throw ConfigError(path: entry.path, problem: "has both 'key' and 'key_sha256'; give only one")
            }
            guard keyNames.insert(name).inserted else {
                throw ConfigError(path: entry.childPath("name"), problem: "duplicate key name '\(name)'")
            }
            guard keyHashes.insert(digest).inserted else {
                throw ConfigError(path: entry.path, problem: "the same key is configured twice")
            }
            let disabled = try entry.optionalBool("disabled") ?? false
            config.apiKeys.append(ClientKeyConfig(name: name, sha256: digest, disabled: disabled))
        }

        var modelIDs: Set<String> = []
        try root.forEachObject("models") { (entry: inout ConfigObject) throws(ConfigError) in
            let id = try entry.nonEmptyString("id")
            guard modelIDs.insert(id).inserted else {
                throw ConfigError(path: entry.childPath("id"), problem: "duplicate model id '\(id)'")
            }
            let ownedBy = try entry.optionalString("owned_by") ?? "sluice"
            let created = try entry.optionalInt("created", in: 0...Int64(Int32.max) * 4) ?? 0
            config.models.append(ModelConfig(id: id, ownedBy: ownedBy, created: created))
        }
        try root.finish()
        return config
    }
}
