// The upstream filter's configuration (`filter_config` of `sluice_upstream`, one per backend
// cluster): which schema the backend speaks and how to authenticate to it.
//
// {
//   "backend": "anthropic",                       // name, for logs and metrics
//   "schema": "anthropic",                        // openai | azure_openai | anthropic | bedrock_converse | gemini | vertex_gemini
//                                                 // | vertex_anthropic | bedrock_anthropic
//   "credential": { "secret": "anthropic-key" },  // or { "secret": "k", "sds_path": "/etc/sluice/k.yaml" },
//                                                 // { "secret": "k", "sds": "ads" } or { "value": "..." }
//   "model_overrides": { "claude-sonnet-4-5": "claude-sonnet-4-5-20250929" },
//   "default_max_tokens": 4096,
//   "path_prefix": "/openai",                     // OpenAI-compatible servers under a prefix (e.g. Groq)
//   "host": "api.anthropic.com",                  // :authority to send (default: Envoy's)
//   "azure": { "api_version": "2024-10-21" },
//   "aws": { "region": "us-east-1", "access_key_id": {cred}, "secret_access_key": {cred}, "session_token": {cred} },
//   "gcp": { "project": "my-project", "location": "us-central1" }
// }

/// Where a credential comes from. Secrets are read through Envoy's SDS so a rotated file takes
/// effect without a restart; `value` is for demos and simulators only.
public enum CredentialSource: Sendable, Equatable {
    /// An Envoy generic secret named `name`, delivered as `sds` says.
    case secret(name: String, sds: SecretDelivery)
    /// Inline value from the config.
    case value(String)

    /// How Envoy gets a generic secret.
    public enum SecretDelivery: Sendable, Equatable {
        /// A `static_resources.secrets` entry of the bootstrap (`{"secret": "k"}`).
        case bootstrap
        /// File-based SDS: a `DiscoveryResponse` file Envoy watches (`"sds_path": "/etc/sluice/k.yaml"`).
        case file(String)
        /// SDS over the ADS stream of the bootstrap's `ads_config` (`"sds": "ads"`): how sluiced
        /// serves provider credentials.
        case ads
    }

    /// A secret from the bootstrap (`sdsPath` nil) or from an SDS file.
    public static func secret(name: String, sdsPath: String?) -> CredentialSource {
        .secret(name: name, sds: sdsPath.map { .file($0) } ?? .bootstrap)
    }

    /// The SDS `ConfigSource` JSON for Envoy, or "" for a static secret.
    public var configSourceJSON: String {
        guard case .secret(_, let delivery) = self else { return "" }
        var writer = JSONWriter()
        writer.beginObject()
        switch delivery {
        case .bootstrap:
            return ""
        case .file(let path):
            writer.key("path_config_source")
            writer.beginObject()
            writer.key("path")
            writer.string(path)
            writer.endObject()
        case .ads:
            writer.key("ads")
            writer.beginObject()
            writer.endObject()
        }
        writer.key("resource_api_version")
        writer.string("V3")
        writer.endObject()
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    static func read(_ object: inout ConfigObject) throws(ConfigError) -> CredentialSource {
        let secret = try object.optionalString("secret")
        let sdsPath = try object.optionalString("sds_path")
        let sds = try object.optionalString("sds")
        let value = try object.optionalString("value")
        switch (secret, value) {
        case (let name?, nil):
            guard !name.isEmpty else { throw ConfigError(path: object.childPath("secret"), problem: "must not be empty") }
            switch (sdsPath, sds) {
            case (nil, nil):
                return .secret(name: name, sds: .bootstrap)
            case (let path?, nil):
                return .secret(name: name, sds: .file(path))
            case (nil, "ads"):
                return .secret(name: name, sds: .ads)
            case (nil, let other?):
                throw ConfigError(path: object.childPath("sds"), problem: "unknown SDS source '\(other)'; the only one is 'ads'")
            case (_?, _?):
                throw ConfigError(path: object.path, problem: "has both 'sds_path' and 'sds'; give only one")
            }
        case (nil, let value?):
            guard sdsPath == nil else {
                throw ConfigError(path: object.childPath("sds_path"), problem: "only applies to 'secret'")
            }
            guard sds == nil else {
                throw ConfigError(path: object.childPath("sds"), problem: "only applies to 'secret'")
            }
            guard !value.isEmpty else { throw ConfigError(path: object.childPath("value"), problem: "must not be empty") }
            return .value(value)
        case (nil, nil):
            throw ConfigError(path: object.path, problem: "needs one of 'secret' or 'value'")
        case (_?, _?):
            throw ConfigError(path: object.path, problem: "has both 'secret' and 'value'; give only one")
        }
    }
}

public struct AWSSettings: Sendable, Equatable {
    public var region: String
    public var accessKeyID: CredentialSource
    public var secretAccessKey: CredentialSource
    public var sessionToken: CredentialSource?
}

public struct GCPSettings: Sendable, Equatable {
    public var project: String
    public var location: String
}

public struct BackendConfig: Sendable, Equatable {
    public var name: String
    public var schema: BackendSchema
    public var credential: CredentialSource?
    public var modelOverrides: [String: String]
    public var defaultMaxTokens: Int
    public var pathPrefix: String
    /// Whether an OpenAI-compatible server serves the Responses API (`/v1/responses`) itself. SGLang,
    /// TGI and llama.cpp do not: with `responses_api: false` a Responses client's request goes to
    /// their chat completions through the hub, as for the translated providers.
    public var servesResponses = true

    /// `path` under `pathPrefix`. Without a prefix it is `path` itself: no new string per request
    /// (a literal path is never copied).
    public func prefixed(_ path: String) -> String {
        pathPrefix.isEmpty ? path : pathPrefix + path
    }
    public var host: String?
    public var azureAPIVersion: String?
    public var aws: AWSSettings?
    public var gcp: GCPSettings?

    public init(name: String, schema: BackendSchema, credential: CredentialSource? = nil) {
        self.name = name
        self.schema = schema
        self.credential = credential
        modelOverrides = [:]
        defaultMaxTokens = 4096
        pathPrefix = ""
        host = nil
        azureAPIVersion = nil
        aws = nil
        gcp = nil
    }

    /// The model name to send upstream for a client's `model`.
    public func upstreamModel(for requested: String) -> String { modelOverrides[requested] ?? requested }

    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> BackendConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(path: "", problem: "filter_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        let config = try read(&root)
        try root.finish()
        return config
    }

    /// A cloud region or location (`us-east-1`, `europe-west4`): it goes into hosts, paths and the
    /// SigV4 credential scope, so only lower-case letters, digits and '-' are accepted.
    static func regionName(_ object: inout ConfigObject, _ key: String) throws(ConfigError) -> String {
        let name = try object.nonEmptyString(key)
        let valid = name.utf8.count <= 64
            && name.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") }
        guard valid else {
            throw ConfigError(path: object.childPath(key), problem: "must be a region name of lower-case letters, digits and '-', e.g. us-east-1")
        }
        return name
    }

    /// Reads one backend object; the caller finishes `root`.
    static func read(_ root: inout ConfigObject) throws(ConfigError) -> BackendConfig {
        let name = try root.nonEmptyString("backend")
        let schemaName = try root.string("schema")
        guard let schema = BackendSchema(rawValue: schemaName) else {
            let known = BackendSchema.allCases.map(\.rawValue).joined(separator: ", ")
            throw ConfigError(path: root.childPath("schema"), problem: "unknown schema '\(schemaName)'; expected one of: \(known)")
        }
        var config = BackendConfig(name: name, schema: schema)
        if var credential = try root.optionalObject("credential") {
            config.credential = try CredentialSource.read(&credential)
            try credential.finish()
        }
        if var overrides = try root.optionalObject("model_overrides") {
            for key in overrides.remainingKeys { config.modelOverrides[key] = try overrides.nonEmptyString(key) }
            try overrides.finish()
        }
        if let tokens = try root.optionalInt("default_max_tokens", in: 1...1_000_000) { config.defaultMaxTokens = Int(tokens) }
        let adapter = schema.adapter
        if let serves = try root.optionalBool("responses_api") {
            guard adapter.optionalSettings(of: schema).contains(.responsesAPI) else {
                throw ConfigError(path: root.childPath("responses_api"), problem: BackendSettings.responsesAPI.onlyFor)
            }
            config.servesResponses = serves
        }
        if let prefix = try root.optionalString("path_prefix") {
            guard prefix.isEmpty || (prefix.hasPrefix("/") && !prefix.hasSuffix("/")) else {
                throw ConfigError(path: root.childPath("path_prefix"), problem: "must start with '/' and not end with '/', e.g. \"/openai\"")
            }
            config.pathPrefix = prefix
        }
        config.host = try root.optionalString("host")
        if var azure = try root.optionalObject("azure") {
            config.azureAPIVersion = try azure.nonEmptyString("api_version")
            try azure.finish()
        }
        if var aws = try root.optionalObject("aws") {
            let region = try Self.regionName(&aws, "region")
            guard var keyID = try aws.optionalObject("access_key_id") else {
                throw ConfigError(path: aws.childPath("access_key_id"), problem: "is required")
            }
            let accessKeyID = try CredentialSource.read(&keyID)
            try keyID.finish()
            guard var secret = try aws.optionalObject("secret_access_key") else {
                throw ConfigError(path: aws.childPath("secret_access_key"), problem: "is required")
            }
            let secretAccessKey = try CredentialSource.read(&secret)
            try secret.finish()
            var sessionToken: CredentialSource?
            if var token = try aws.optionalObject("session_token") {
                sessionToken = try CredentialSource.read(&token)
                try token.finish()
            }
            try aws.finish()
            config.aws = AWSSettings(
                region: region, accessKeyID: accessKeyID, secretAccessKey: secretAccessKey, sessionToken: sessionToken)
        }
        if var gcp = try root.optionalObject("gcp") {
            config.gcp = GCPSettings(project: try gcp.nonEmptyString("project"), location: try Self.regionName(&gcp, "location"))
            try gcp.finish()
        }

        // The adapter says what its schema needs; the first missing setting is named, in this order.
        let required = adapter.requiredSettings(of: schema)
        for setting in BackendSettings.checkOrder where required.contains(setting) && !config.has(setting) {
            throw ConfigError(path: root.childPath(setting.key), problem: "is required for schema \(schema.rawValue)\(setting.whatFor)")
        }
        return config
    }
}

/// Settings of a backend's config that only some schemas have: a schema's adapter names those it
/// requires (`ProviderAdapter.requiredSettings`) and those only it accepts
/// (`ProviderAdapter.optionalSettings`).
public struct BackendSettings: OptionSet, Sendable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `credential`: the key or token (a SigV4 backend's keys are in `aws`).
    public static let credential = BackendSettings(rawValue: 1 << 0)
    /// `azure`: `api_version`.
    public static let azure = BackendSettings(rawValue: 1 << 1)
    /// `aws`: region and keys.
    public static let aws = BackendSettings(rawValue: 1 << 2)
    /// `gcp`: project and location.
    public static let gcp = BackendSettings(rawValue: 1 << 3)
    /// `responses_api`: whether an OpenAI-compatible server has the Responses API.
    public static let responsesAPI = BackendSettings(rawValue: 1 << 4)

    /// The order in which missing required settings are reported (the cloud's own block first).
    static let checkOrder: [BackendSettings] = [.azure, .aws, .gcp, .credential]

    /// The config key.
    public var key: String {
        switch self {
        case .credential: "credential"
        case .azure: "azure"
        case .aws: "aws"
        case .gcp: "gcp"
        default: "responses_api"
        }
    }

    /// What the setting holds, for the error that says it is missing (with a leading space).
    public var whatFor: String {
        switch self {
        case .azure: " (api_version)"
        case .aws: " (region and keys)"
        case .gcp: " (project and location)"
        default: ""
        }
    }

    /// The error for a backend of a schema that does not take this setting: the schemas that do.
    var onlyFor: String {
        let schemas = BackendSchema.allCases.filter { $0.adapter.optionalSettings(of: $0).contains(self) }
        let names = schemas.map(\.rawValue).joined(separator: ", ")
        // The one schema that takes `responses_api` today is OpenAI-compatible servers'.
        let what = self == .responsesAPI ? " (OpenAI-compatible servers)" : ""
        return "applies only to the \(names) schema\(schemas.count == 1 ? "" : "s")\(what)"
    }
}

extension BackendConfig {
    /// Whether the config has `setting`.
    func has(_ setting: BackendSettings) -> Bool {
        switch setting {
        case .credential: credential != nil
        case .azure: azureAPIVersion != nil
        case .aws: aws != nil
        case .gcp: gcp != nil
        default: true
        }
    }
}

/// The `sluice_upstream` filter's configuration: one backend (the cluster is that backend), or
/// several for a cluster whose hosts belong to different backends (an Envoy aggregate cluster
/// used for fallback). Then each host says which backend it is through endpoint metadata
/// `filter_metadata: { sluice: { backend: <name> } }`.
///
///   { "backend": "openai", "schema": "openai", ... }
///   { "backends": [ { "backend": "openai", ... }, { "backend": "azure", ... } ] }
public struct UpstreamConfig: Sendable, Equatable {
    public var backends: [BackendConfig]

    public init(backends: [BackendConfig]) { self.backends = backends }

    /// The backend a host belongs to: by its metadata name, or the only one.
    public func backend(named name: String?) -> BackendConfig? {
        if let name { return backends.first { $0.name == name } }
        return backends.count == 1 ? backends.first : nil
    }

    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> UpstreamConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes)
        } catch {
            throw ConfigError(path: "", problem: "filter_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        var config = UpstreamConfig(backends: [])
        if document["backends"] != nil {
            var names: Set<String> = []
            try root.forEachObject("backends") { (entry: inout ConfigObject) throws(ConfigError) in
                let backend = try BackendConfig.read(&entry)
                guard names.insert(backend.name).inserted else {
                    throw ConfigError(path: entry.childPath("backend"), problem: "duplicate backend name '\(backend.name)'")
                }
                config.backends.append(backend)
            }
            guard !config.backends.isEmpty else { throw ConfigError(path: "backends", problem: "must not be empty") }
        } else {
            config.backends = [try BackendConfig.read(&root)]
        }
        try root.finish()
        return config
    }
}
