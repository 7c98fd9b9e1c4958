// sluice.yaml → `SluiceConfig`: parse with Yams' node API (positions), read every section with
// type and range checks, then check the names sections give each other (a model's backend, a
// consumer's team, a fallback's members) with a did-you-mean for each unknown one.
internal import Foundation
internal import SluiceCore
internal import Yams

extension SluiceConfig {
    /// A config the loader accepted, and what it had to say about it.
    public struct Loaded: Sendable {
        public var config: SluiceConfig
        /// Accepted but worth attention (a plaintext consumer key).
        public var warnings: [ConfigDiagnostic]
    }

    /// Loads and validates a config from YAML text.
    /// - Parameters:
    ///   - yaml: the document.
    ///   - file: the name diagnostics give the document (`sluice.yaml`, or the path it was read from).
    /// - Returns: the validated config and the loader's warnings.
    /// - Throws: every error found (up to `ConfigLoadError.limit`), in file order.
    public static func load(yaml: String, file: String = "sluice.yaml") throws(ConfigLoadError) -> Loaded {
        let log = DiagnosticLog(file: file)
        var root: Node?
        do {
            root = try Yams.compose(yaml: yaml)
        } catch let error as YamlError {
            log.error(error.position, "", error.summary)
        } catch {
            log.error(nil, "", "not valid YAML: \(error)")
        }
        var config: SluiceConfig?
        if log.errors.isEmpty {
            if let root {
                config = ConfigLoader(log: log).load(root)
            } else {
                log.error(nil, "", "the config is empty; it needs at least 'backends' and 'models'")
            }
        }
        let errors = log.errors.enumerated().sorted { a, b in
            (a.element.line, a.element.column, a.offset) < (b.element.line, b.element.column, b.offset)
        }.map(\.element)
        guard errors.isEmpty, let config else {
            throw ConfigLoadError(
                diagnostics: Array(errors.prefix(ConfigLoadError.limit)), omitted: max(0, errors.count - ConfigLoadError.limit))
        }
        return Loaded(config: config, warnings: log.warnings)
    }

    /// Loads and validates the config file at `path` (diagnostics name the file by `path`).
    public static func load(contentsOfFile path: String) throws(ConfigLoadError) -> Loaded {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigLoadError(diagnostics: [
                ConfigDiagnostic(file: path, line: 0, column: 0, path: "", message: "cannot read the file")
            ])
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigLoadError(diagnostics: [
                ConfigDiagnostic(file: path, line: 0, column: 0, path: "", message: "is not UTF-8 text")
            ])
        }
        return try load(yaml: text, file: path)
    }
}

extension YamlError {
    /// Where libyaml found the problem.
    fileprivate var position: Mark? {
        switch self {
        case .scanner(_, _, let mark, _), .parser(_, _, let mark, _), .composer(_, _, let mark, _): mark
        case .duplicatedKeysInMapping(_, let context): context.mark
        default: nil
        }
    }

    /// The problem in one line, without libyaml's snippet.
    fileprivate var summary: String {
        switch self {
        case .scanner(let context, let problem, _, _), .parser(let context, let problem, _, _),
            .composer(let context, let problem, _, _):
            let while_ = context.map { " (\($0.text))" } ?? ""
            return "not valid YAML: \(problem)\(while_)"
        case .duplicatedKeysInMapping(let duplicates, _):
            return "a key is given twice in one mapping: " + duplicates.sorted().map { "'\($0)'" }.joined(separator: ", ")
        default:
            return "not valid YAML: \(self)"
        }
    }
}

// MARK: - The loader

/// Route names travel in the `x-sluice-route` header: the module's alphabet.
func isRouteName(_ name: String) -> Bool {
    !name.isEmpty && name.utf8.count <= 128
        && name.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")) || byte == UInt8(ascii: "-")
                || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
}

/// Backend names a model, rule or setting refers to, checked once every backend is known.
private struct PendingTarget {
    var names: [Located]
}

final class ConfigLoader {
    let log: DiagnosticLog
    private var config = SluiceConfig()

    // Where names were defined, for "already defined at line N" and the checks at the end.
    private var backendMarks: [String: Mark?] = [:]
    private var modelNames: [String: Mark?] = [:]
    private var teamMarks: [String: Mark?] = [:]
    private var priceMarks: [String: Mark?] = [:]
    private var limitMarks: [String: Mark?] = [:]
    /// Targets to check once every backend is known.
    private var targets: [PendingTarget] = []
    private var teamRefs: [Located] = []
    private var consumerModelRefs: [Located] = []
    private var overrideRefs: [(backend: Located, target: [String])] = []
    /// Models marked `lora_adapter: true`, checked once every pool is read.
    private var loraModels: [(mark: Mark?, path: String, target: SluiceConfig.Target?)] = []
    private var modelNodes: [(path: String, mark: Mark?, hasTarget: Bool)] = []
    private var pricedOrLimited: [Located] = []

    init(log: DiagnosticLog) { self.log = log }

    func load(_ root: Node) -> SluiceConfig? {
        guard let top = MapReader(root, path: "", section: "", log: log) else { return nil }
        readListeners(top)
        for (node, path) in top.list("backends") { readBackend(node, path: path, kind: .provider) }
        for (node, path) in top.list("pools") { readBackend(node, path: path, kind: .pool) }
        for (node, path) in top.list("teams") { readTeam(node, path: path) }
        for (node, path) in top.list("models") { readModel(node, path: path) }
        for (node, path) in top.list("routes") { readRoute(node, path: path) }
        for (node, path) in top.list("consumers") { readConsumer(node, path: path) }
        if let prices = top.map("prices", section: nil) {
            for model in prices.keys {
                guard let entry = prices.map(model, section: "prices{}", required: true) else { continue }
                let name = Located(value: model, mark: prices.keyMark(model), path: prices.childPath(model))
                if let price = readPrice(entry) { addPrice(price, for: name) }
            }
        }
        if let limits = top.map("model_limits", section: nil) {
            for model in limits.keys {
                guard let entry = limits.map(model, section: "model_limits{}", required: true) else { continue }
                let name = Located(value: model, mark: limits.keyMark(model), path: limits.childPath(model))
                addLimits(readLimits(entry), for: name)
                if let failure = readLeaseFailure(entry, "lease_failure", section: "model_limits{}.lease_failure") {
                    config.leaseFailure[.model(model)] = failure
                }
            }
        }
        if let gateway = top.map("gateway", section: "gateway") { readGateway(gateway) }
        if !top.has("backends") && !top.has("pools") {
            top.missing("backends", " (where requests go)")
        }
        if !top.has("models") && !top.has("routes") {
            top.missing("models", " (what clients may ask for)")
        }
        checkReferences()
        return config
    }

    // MARK: Listeners

    private func readListeners(_ top: MapReader) {
        guard top.has("listeners") else {
            config.listeners = [SluiceConfig.Listener(name: "gateway", address: "127.0.0.1", port: 10000)]
            return
        }
        var names: [String: Mark?] = [:]
        var sockets: [String: Mark?] = [:]
        for (node, path) in top.list("listeners") {
            guard let entry = MapReader(node, path: path, section: "listeners[]", log: log) else { continue }
            let name = entry.located("name", required: true)
            if let name, let previous = names.updateValue(name.mark, forKey: name.value) {
                log.error(name.mark, name.path, "listener '\(name.value)' is already defined\(at(previous))")
            }
            var address = "127.0.0.1"
            if let text = entry.string("address") {
                if SluiceConfig.Endpoint.isIPLiteral(text) {
                    address = text
                } else {
                    log.error(entry.node("address")?.mark, entry.childPath("address"), "expected an IP address to listen on (127.0.0.1, 0.0.0.0 or ::), got '\(text)'")
                }
            }
            let port = entry.int("port", in: 1...65535, required: true)
            var tls: ListenerTLSPlan?
            if let tlsMap = entry.map("tls", section: "listeners[].tls") {
                let cert = tlsMap.string("cert_file", required: true)
                let key = tlsMap.string("key_file", required: true)
                if let cert, let key { tls = ListenerTLSPlan(certificateChainPath: cert, privateKeyPath: key) }
            }
            let accessLog = entry.bool("access_log") ?? true
            guard let name, let port else { continue }
            let socket = "\(address):\(port)"
            if let previous = sockets.updateValue(entry.node("port")?.mark, forKey: socket) {
                log.error(entry.node("port")?.mark, entry.childPath("port"), "\(socket) is already used by another listener\(at(previous))")
            }
            config.listeners.append(
                SluiceConfig.Listener(name: name.value, address: address, port: Int(port), tls: tls, accessLog: accessLog))
        }
        if config.listeners.isEmpty && log.errors.isEmpty {
            log.error(top.node("listeners")?.mark, "listeners", "must not be empty (or leave it out for 127.0.0.1:10000)")
        }
    }

    // MARK: Backends and pools

    private func readBackend(_ node: Node, path: String, kind: SluiceConfig.Backend.Kind) {
        let section = kind == .pool ? "pools[]" : "backends[]"
        guard let entry = MapReader(node, path: path, section: section, log: log) else { return }
        let name = entry.located("name", required: true)
        if let name {
            if !isRouteName(name.value) {
                log.error(name.mark, name.path, "must be 1-128 letters, digits, '-', '_' or '.' (it names an Envoy route and cluster)")
            } else if name.value.hasPrefix("fallback-") {
                log.error(name.mark, name.path, "names starting with 'fallback-' are reserved for the clusters of fallbacks")
            }
            if let previous = backendMarks.updateValue(name.mark, forKey: name.value) {
                log.error(name.mark, name.path, "a backend or pool named '\(name.value)' is already defined\(at(previous))")
            }
        }
        var schema: BackendSchema?
        if let text = entry.string("schema", required: kind == .provider) {
            schema = BackendSchema(rawValue: text)
            if schema == nil {
                let known = BackendSchema.allCases.map(\.rawValue)
                log.error(entry.node("schema")?.mark, entry.childPath("schema"), "unknown schema '\(text)'" + Spelling.hint(for: text, among: known))
            }
        } else if kind == .pool {
            schema = .openAI
        }

        // Addresses.
        var urls: [Located] = []
        if kind == .pool {
            urls = entry.strings("endpoints", required: true) ?? []
            if entry.has("endpoints") && urls.isEmpty, let node = entry.node("endpoints"), case .sequence = node {
                log.error(node.mark, entry.childPath("endpoints"), "must list at least one endpoint")
            }
        } else {
            switch (entry.located("address"), entry.has("addresses")) {
            case (let single?, false):
                urls = [single]
            case (nil, true):
                urls = entry.strings("addresses") ?? []
                if urls.isEmpty, let node = entry.node("addresses"), case .sequence = node {
                    log.error(node.mark, entry.childPath("addresses"), "must list at least one address")
                }
            case (_?, true):
                log.error(entry.keyMark("addresses"), entry.childPath("addresses"), "give either 'address' or 'addresses', not both")
            case (nil, false):
                if !entry.has("address") && defaultHost(schema, entry) == nil {
                    entry.missing("address", " (like https://api.openai.com or http://127.0.0.1:8000)")
                }
            }
        }
        var endpoints: [SluiceConfig.Endpoint] = []
        var scheme: String?
        if kind == .provider, !entry.has("address"), !entry.has("addresses"), let host = defaultHost(schema, entry) {
            endpoints = [SluiceConfig.Endpoint(host: host, port: 443)]
            scheme = "https"
        }
        for url in urls {
            guard let parsed = parseURL(url) else { continue }
            if let scheme, scheme != parsed.scheme {
                log.error(url.mark, url.path, "mixes http and https; every address of a backend uses the same scheme")
                continue
            }
            scheme = parsed.scheme
            endpoints.append(parsed.endpoint)
        }

        guard let name, let schema else {
            _ = readCredentialIfAny(entry, "credential", endpoints: endpoints)
            return
        }
        var backend = SluiceConfig.Backend(name: name.value, kind: kind, schema: schema, endpoints: endpoints, tls: scheme == "https")
        backend.tlsVerify = entry.bool("tls_verify") ?? true
        if entry.has("tls_verify") && scheme != "https" {
            log.error(entry.keyMark("tls_verify"), entry.childPath("tls_verify"), "only applies to https:// addresses")
        }
        backend.http2 = entry.bool("http2") ?? false
        backend.credential = readCredentialIfAny(entry, "credential", endpoints: endpoints)
        if let overrides = entry.stringMap("model_overrides") {
            for (model, upstream) in overrides { backend.modelOverrides[model.value] = upstream }
        }
        if let tokens = entry.int("default_max_tokens", in: 1...1_000_000) { backend.defaultMaxTokens = Int(tokens) }
        let adapter = schema.adapter
        if let serves = entry.bool("responses_api") {
            if adapter.optionalSettings(of: schema).contains(.responsesAPI) {
                backend.servesResponses = serves
            } else {
                let schemas = Self.schemas { $0.adapter.optionalSettings(of: $0).contains(.responsesAPI) }
                log.error(entry.keyMark("responses_api"), entry.childPath("responses_api"), "applies only to schema \(schemas) (OpenAI-compatible servers); this backend's schema is \(schema.rawValue)")
            }
        }
        if let prefix = entry.string("path_prefix") {
            if prefix.hasPrefix("/") && !prefix.hasSuffix("/") {
                backend.pathPrefix = prefix
            } else {
                log.error(entry.node("path_prefix")?.mark, entry.childPath("path_prefix"), "must start with '/' and not end with '/', like /openai")
            }
        }
        if kind == .pool { backend.loadBalancing = readLoadBalancing(entry, backend: backend, urls: urls) }
        // Provider settings: backends only (a pool's section has none of these fields).
        let isProvider = kind == .provider
        func given(_ key: String) -> Bool { isProvider && entry.has(key) }
        if isProvider, let azure = entry.map("azure", section: "backends[].azure") {
            backend.azureAPIVersion = azure.string("api_version", required: true)
        }
        if isProvider, let aws = entry.map("aws", section: "backends[].aws") {
            let region = aws.string("region", required: true)
            let keyID = readCredential(aws, "access_key_id", section: "backends[].aws.access_key_id", endpoints: endpoints, required: true)
            let secret = readCredential(
                aws, "secret_access_key", section: "backends[].aws.secret_access_key", endpoints: endpoints, required: true)
            let token = readCredential(aws, "session_token", section: "backends[].aws.session_token", endpoints: endpoints, required: false)
            if let region, let keyID, let secret {
                backend.aws = SluiceConfig.AWS(region: region, accessKeyID: keyID, secretAccessKey: secret, sessionToken: token)
            }
        }
        if isProvider, let gcp = entry.map("gcp", section: "backends[].gcp") {
            let project = gcp.string("project", required: true)
            let location = gcp.string("location", required: true)
            if let project, let location { backend.gcp = SluiceConfig.GCP(project: project, location: location) }
        }

        // What each schema needs, and what it does not take: its adapter's settings
        // (`ProviderAdapter.requiredSettings`), the same ones the filter's config reader requires.
        let required = adapter.requiredSettings(of: schema)
        if !isProvider, !adapter.servesPools(of: schema) {
            let pooled = Self.schemas { $0.adapter.servesPools(of: $0) }
            log.error(entry.node("schema")?.mark, entry.childPath("schema"), "a pool's servers speak \(pooled); \(schema.rawValue) is a cloud provider's API (a backend)")
            return
        }
        let cloudSettings: [BackendSettings] = [.azure, .aws, .gcp]
        for setting in cloudSettings where !required.contains(setting) && given(setting.key) {
            let onlyFor = Self.schemas { $0.adapter.requiredSettings(of: $0).contains(setting) }
            log.error(entry.keyMark(setting.key), entry.childPath(setting.key), "only applies to schema \(onlyFor); this backend's schema is \(schema.rawValue)")
        }
        for setting in cloudSettings where required.contains(setting) && !given(setting.key) {
            entry.missing(setting.key, "\(setting.whatFor) for schema \(schema.rawValue)")
            break
        }
        if required.contains(.credential) {
            if !entry.has("credential") {
                entry.missing("credential", " for schema \(schema.rawValue) (env, file or sds)")
            }
        } else if required.contains(.aws), entry.has("credential") {
            // A schema that signs with AWS keys has no other credential.
            log.error(entry.keyMark("credential"), entry.childPath("credential"), "\(schema.rawValue) signs with the keys under 'aws'; remove 'credential'")
        }
        config.backends.append(backend)
    }

    /// The public endpoint of a provider whose address needs no choosing: Anthropic, Gemini,
    /// Bedrock in `aws.region`, Vertex AI in `gcp.location`. OpenAI-compatible servers and Azure
    /// resources have no default: the address says which one.
    private func defaultHost(_ schema: BackendSchema?, _ entry: MapReader) -> String? {
        func setting(_ section: String, _ key: String) -> String? {
            guard let value = entry.node(section)?.mapping?[key]?.scalar?.string, isHostLabel(value) else { return nil }
            return value
        }
        guard let schema else { return nil }
        return schema.adapter.defaultHost(of: schema, awsRegion: setting("aws", "region"), gcpLocation: setting("gcp", "location"))
    }

    /// The names of the schemas `included` picks, as a message lists them ("a, b or c").
    private static func schemas(_ included: (BackendSchema) -> Bool) -> String {
        let names = BackendSchema.allCases.filter(included).map(\.rawValue)
        guard let last = names.last else { return "" }
        return names.count == 1 ? last : names.dropLast().joined(separator: ", ") + " or " + last
    }

    private func isHostLabel(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy { byte in
            (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")) || (byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
                || byte == UInt8(ascii: "-")
        }
    }

    private func parseURL(_ url: Located) -> (scheme: String, endpoint: SluiceConfig.Endpoint)? {
        let example = "like https://api.openai.com or http://127.0.0.1:8000"
        let text = url.value
        guard let schemeEnd = text.range(of: "://") else {
            log.error(url.mark, url.path, "expected a URL with a scheme, \(example); got '\(text)'")
            return nil
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            log.error(url.mark, url.path, "unsupported scheme '\(scheme)'; expected http or https (\(example))")
            return nil
        }
        var rest = Substring(text[schemeEnd.upperBound...])
        if rest.hasSuffix("/") { rest.removeLast() }
        if rest.hasSuffix("/v1") && !rest.dropLast(3).contains("/") {
            log.error(url.mark, url.path, "drop the '/v1': the gateway sends each API's own path (/v1/chat/completions, ...)")
            return nil
        }
        if rest.contains("/") || rest.contains("?") || rest.contains("@") {
            log.error(url.mark, url.path, "expected scheme, host and port only (\(example)); a server under a path takes 'path_prefix'")
            return nil
        }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {  // [IPv6]:port
            guard let close = rest.firstIndex(of: "]") else {
                log.error(url.mark, url.path, "unterminated IPv6 address '\(text)'")
                return nil
            }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                log.error(url.mark, url.path, "unexpected '\(after)' after the host")
                return nil
            }
        } else if let colon = rest.lastIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else {
            log.error(url.mark, url.path, "has no host (\(example))")
            return nil
        }
        var port = scheme == "https" ? 443 : 80
        if let portText {
            guard let value = Int(portText), (1...65535).contains(value) else {
                log.error(url.mark, url.path, "the port must be between 1 and 65535, got '\(portText)'")
                return nil
            }
            port = value
        }
        return (scheme, SluiceConfig.Endpoint(host: host.lowercased(), port: port))
    }

    private func readCredentialIfAny(_ entry: MapReader, _ key: String, endpoints: [SluiceConfig.Endpoint]) -> SluiceConfig.Credential? {
        let section = entry.path.hasPrefix("pools") ? "pools[].credential" : "backends[].credential"
        return readCredential(entry, key, section: section, endpoints: endpoints, required: false)
    }

    private func readCredential(
        _ parent: MapReader, _ key: String, section: String, endpoints: [SluiceConfig.Endpoint], required: Bool
    ) -> SluiceConfig.Credential? {
        if let node = parent.node(key), case .scalar(let scalar) = node {
            let text = scalar.string
            let hint =
                text.hasPrefix("os.environ/")
                ? "write { env: \(text.dropFirst("os.environ/".count)) }"
                : "a credential names where the key is: { env: OPENAI_API_KEY }, { file: PATH } or { sds: NAME }; never the key itself"
            log.error(node.mark, parent.childPath(key), "expected a mapping, got a string; \(hint)")
            return nil
        }
        guard let map = parent.map(key, section: section, required: required) else { return nil }
        let given = ["env", "file", "sds", "demo_value"].filter { map.has($0) }
        guard given.count == 1, let kind = given.first else {
            if given.isEmpty {
                if map.hadUnknownFields {
                    // The misspelt field was reported with its did-you-mean.
                } else if !map.has("sds_path") {
                    log.error(map.mark, map.path, "needs one of 'env', 'file', 'sds' or 'demo_value' (the secret itself never goes in the config)")
                } else {
                    log.error(map.mark, map.path, "'sds_path' needs 'sds' (the secret's name)")
                }
            } else {
                log.error(map.keyMark(given[1]), map.childPath(given[1]), "give only one of 'env', 'file', 'sds' and 'demo_value' (found '\(given[0])' and '\(given[1])')")
            }
            return nil
        }
        if map.has("sds_path") && kind != "sds" {
            log.error(map.keyMark("sds_path"), map.childPath("sds_path"), "only applies with 'sds'")
        }
        switch kind {
        case "env":
            guard let name = map.string("env") else { return nil }
            let valid = name.utf8.enumerated().allSatisfy { index, byte in
                byte == UInt8(ascii: "_") || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z"))
                    || (byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z"))
                    || (index > 0 && byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9"))
            }
            guard valid else {
                log.error(map.node("env")?.mark, map.childPath("env"), "expected an environment variable name like OPENAI_API_KEY, got '\(name)'")
                return nil
            }
            return .environment(name)
        case "file":
            guard let path = map.string("file") else { return nil }
            return .file(path)
        case "sds":
            guard let name = map.string("sds") else { return nil }
            return .sds(name: name, path: map.string("sds_path"))
        default:
            guard let value = map.string("demo_value") else { return nil }
            if endpoints.isEmpty || !endpoints.allSatisfy(\.isLoopback) {
                log.error(
                    map.keyMark("demo_value"), map.childPath("demo_value"),
                    "a secret written in the config is accepted only for backends on loopback (the simulators' fake keys); reference the key with 'env', 'file' or 'sds'"
                )
                return nil
            }
            return .demoValue(value)
        }
    }

    // MARK: Models and routes

    private func readTarget(_ entry: MapReader, required: Bool) -> SluiceConfig.Target? {
        let backend = entry.located("backend")
        let fallback = entry.strings("fallback")
        switch (backend, fallback) {
        case (let backend?, nil):
            targets.append(PendingTarget(names: [backend]))
            return .backend(backend.value)
        case (nil, let members?):
            guard members.count >= 2 else {
                log.error(entry.node("fallback")?.mark, entry.childPath("fallback"), "lists backends tried in order and needs at least two; for one, say 'backend: \(members.first?.value ?? "name")'")
                return nil
            }
            var seen: Set<String> = []
            for member in members where !seen.insert(member.value).inserted {
                log.error(member.mark, member.path, "names backend '\(member.value)' twice; each backend appears once in a fallback")
            }
            guard seen.count == members.count else { return nil }
            targets.append(PendingTarget(names: members))
            return .fallback(members.map(\.value))
        case (_?, _?):
            log.error(entry.keyMark("fallback"), entry.childPath("fallback"), "give either 'backend' or 'fallback', not both")
            return nil
        case (nil, nil):
            if required && !entry.has("backend") && !entry.has("fallback") {
                entry.missing("backend", " (or 'fallback': backends tried in order)")
            }
            return nil
        }
    }

    /// A pool's `lb` and `endpoint_picker`.
    private func readLoadBalancing(_ entry: MapReader, backend: SluiceConfig.Backend, urls: [Located]) -> SluiceConfig.LoadBalancing {
        let known = ["round_robin", "least_request", "endpoint_picker"]
        let lb = entry.string("lb")
        if entry.has("endpoint_picker") && lb != "endpoint_picker" {
            log.error(entry.keyMark("endpoint_picker"), entry.childPath("endpoint_picker"), "only applies with 'lb: endpoint_picker'")
        }
        switch lb {
        case nil, "round_robin":
            return .roundRobin
        case "least_request":
            return .leastRequest
        case "endpoint_picker":
            break
        case let other?:
            log.error(entry.node("lb")?.mark, entry.childPath("lb"), "unknown lb '\(other)'" + Spelling.hint(for: other, among: known))
            return .roundRobin
        }
        // The picker matches Envoy's hosts by "ip:port" and scrapes each server's /metrics over
        // plain HTTP through an ORIGINAL_DST cluster: both need IP addresses, and plain HTTP.
        if backend.tls {
            log.error(entry.node("lb")?.mark, entry.childPath("lb"), "endpoint_picker needs http:// endpoints (the /metrics scrapes are plain HTTP); this pool uses https")
        }
        for (url, endpoint) in zip(urls, backend.endpoints) where !EndpointPlan(host: endpoint.host, port: endpoint.port).isIPAddress {
            log.error(url.mark, url.path, "endpoint_picker needs IP addresses (it matches Envoy's hosts by address); '\(endpoint.host)' is a host name")
        }
        if backend.endpoints.count > EndpointSet.capacity {
            log.error(entry.node("endpoints")?.mark, entry.childPath("endpoints"), "endpoint_picker scores at most \(EndpointSet.capacity) endpoints, this pool lists \(backend.endpoints.count)")
        }
        var members: [JSONObject.Member] = []
        if let picker = entry.map("endpoint_picker", section: "pools[].endpoint_picker") {
            if let path = picker.string("metrics_path") { members.append(("metrics_path", .string(path))) }
            if let header = picker.string("session_header") { members.append(("session_header", .string(header))) }
            for (key, range) in [
                ("stale_after_ms", Int64(100)...600_000), ("saturation_queue", 1...Int64(ModelServerMetrics.maxCount)),
                ("prefix_blocks_per_endpoint", Int64(PrefixIndex.blocksPerEndpointRange.lowerBound)...Int64(PrefixIndex.blocksPerEndpointRange.upperBound)),
                ("session_entries", Int64(SessionTable.capacityRange.lowerBound)...Int64(SessionTable.capacityRange.upperBound)),
            ] {
                if let value = picker.int(key, in: range) { members.append((key, .number(JSONNumber(value)))) }
            }
            if let value = picker.double("saturation_kv_cache", in: 0.01...1), let number = JSONNumber(value) {
                members.append(("saturation_kv_cache", .number(number)))
            }
            for key in ["prefix_weight", "queue_weight", "kv_cache_weight", "lora_weight", "session_weight"] {
                if let value = picker.double(key, in: EndpointScoringConfig.weightRange), let number = JSONNumber(value) {
                    members.append((key, .number(number)))
                }
            }
            // The module's own parser has the last word (metrics_path's form, the weights together).
            var writer = JSONWriter()
            writer.value(.object(JSONObject([("pool", .string(backend.name))] + members)))
            do {
                _ = try EndpointPickerConfig.parse(writer.bytes)
            } catch {
                log.error(picker.node(error.path)?.mark ?? picker.mark, picker.childPath(error.path), error.problem)
            }
        }
        return .endpointPicker(settings: JSONObject(members))
    }

    private func readModel(_ node: Node, path: String) {
        guard let entry = MapReader(node, path: path, section: "models[]", log: log) else { return }
        let id = entry.located("id", required: true)
        var names: [Located] = []
        if let id { names.append(id) }
        let aliases = entry.strings("aliases") ?? []
        names += aliases
        for name in names {
            if let previous = modelNames.updateValue(name.mark, forKey: name.value) {
                log.error(name.mark, name.path, "model '\(name.value)' is already defined\(at(previous))")
            }
        }
        let target = readTarget(entry, required: false)
        let upstream = entry.string("upstream_model")
        var overrides: [String: String] = [:]
        if let map = entry.stringMap("overrides") {
            for (backend, upstream) in map {
                overrides[backend.value] = upstream
                if let target { overrideRefs.append((backend, target.backendNames)) }
            }
        }
        if entry.has("overrides") && target == nil && !entry.has("backend") && !entry.has("fallback") {
            log.error(entry.keyMark("overrides"), entry.childPath("overrides"), "names upstream models per backend of 'backend' or 'fallback', and this model has neither")
        }
        let created = entry.int("created", in: 0...Int64(Int32.max) * 4)
        let ownedBy = entry.string("owned_by")
        let limitsMap = entry.map("limits", section: "models[].limits")
        let limits = limitsMap.map(readLimits)
        let failure = limitsMap.flatMap { readLeaseFailure($0, "lease_failure", section: "models[].limits.lease_failure") }
        let price = entry.map("price", section: "models[].price").flatMap(readPrice)
        guard let id else { return }
        if let failure {
            // An alias is a model name of its own to the module: its limits and policy too.
            for name in [id.value] + aliases.map(\.value) { config.leaseFailure[.model(name)] = failure }
        }
        let defaultOwner: String = if case .backend(let name)? = target { name } else { "sluice" }
        let model = SluiceConfig.Model(
            id: id.value, target: target, upstreamModel: upstream, overrides: overrides, ownedBy: ownedBy ?? defaultOwner,
            created: created ?? 0, aliases: aliases.map(\.value))
        var listed = model
        if let lora = entry.bool("lora_adapter") {
            listed.loraAdapter = lora
            if lora { loraModels.append((entry.keyMark("lora_adapter"), entry.childPath("lora_adapter"), target)) }
        }
        config.models.append(listed)
        modelNodes.append((path, entry.mark, entry.has("backend") || entry.has("fallback")))
        for name in names {
            if let limits { addLimits(limits, for: name) }
            if let price { addPrice(price, for: name) }
        }
    }

    private func readRoute(_ node: Node, path: String) {
        guard let entry = MapReader(node, path: path, section: "routes[]", log: log) else { return }
        let models = entry.strings("models") ?? []
        let prefix = entry.string("model_prefix", allowEmpty: true)
        var headers: [SluiceConfig.HeaderMatch] = []
        for (name, value) in entry.stringMap("headers") ?? [] {
            let lowered = name.value.lowercased()
            guard !lowered.isEmpty, lowered.utf8.allSatisfy(HTTPToken.isTokenByte) else {
                log.error(name.mark, name.path, "'\(name.value)' is not an HTTP header name")
                continue
            }
            headers.append(SluiceConfig.HeaderMatch(name: lowered, value: value))
        }
        if models.isEmpty && prefix == nil && !entry.has("models") {
            log.error(entry.mark, entry.path, "needs 'models' or 'model_prefix' (\"\" takes every model)")
        }
        guard let target = readTarget(entry, required: true) else { return }
        config.routes.append(
            SluiceConfig.Route(models: models.map(\.value), modelPrefix: prefix, headers: headers, target: target))
    }

    // MARK: Consumers and teams

    private func readTeam(_ node: Node, path: String) {
        guard let entry = MapReader(node, path: path, section: "teams[]", log: log) else { return }
        let name = entry.located("name", required: true)
        let limitsMap = entry.map("limits", section: "teams[].limits")
        let limits = limitsMap.map(readLimits) ?? QuotaLimits()
        let failure = limitsMap.flatMap { readLeaseFailure($0, "lease_failure", section: "teams[].limits.lease_failure") }
        guard let name else { return }
        if let failure { config.leaseFailure[.team(name.value)] = failure }
        if let previous = teamMarks.updateValue(name.mark, forKey: name.value) {
            log.error(name.mark, name.path, "team '\(name.value)' is already defined\(at(previous))")
            return
        }
        config.teams.append(TeamSpec(name: name.value, limits: limits, source: .config))
    }

    private var consumerMarks: [String: Mark?] = [:]
    private var keyOwners: [SHA256Digest: (name: String, mark: Mark?)] = [:]

    private func readConsumer(_ node: Node, path: String) {
        guard let entry = MapReader(node, path: path, section: "consumers[]", log: log) else { return }
        let name = entry.located("name", required: true)
        if let name, let previous = consumerMarks.updateValue(name.mark, forKey: name.value) {
            log.error(name.mark, name.path, "consumer '\(name.value)' is already defined\(at(previous))")
        }
        var digest: SHA256Digest?
        switch (entry.located("key"), entry.located("key_sha256")) {
        case (let key?, nil):
            digest = SHA256.hash(key.value)
            log.warning(
                key.mark, key.path,
                "a plaintext key in the config is for demos; store its SHA-256 as 'key_sha256' instead (printf %s KEY | sha256sum)")
        case (nil, let hex?):
            digest = SHA256Digest(hex: hex.value)
            if digest == nil { log.error(hex.mark, hex.path, "expected 64 hexadecimal characters (the key's SHA-256), got '\(hex.value.prefix(70))'") }
        case (_?, _?):
            log.error(entry.keyMark("key_sha256"), entry.childPath("key_sha256"), "give either 'key' or 'key_sha256', not both")
        case (nil, nil):
            if !entry.has("key") && !entry.has("key_sha256") {
                entry.missing("key_sha256", " (the SHA-256 of the client's key, in hex)")
            }
        }
        if let digest, let name {
            let field = entry.has("key_sha256") ? "key_sha256" : "key"
            let keyMark = entry.node(field)?.mark
            if let owner = keyOwners[digest] {
                log.error(keyMark, entry.childPath(field), "the same key is already given to consumer '\(owner.name)'\(at(owner.mark))")
            } else {
                keyOwners[digest] = (name.value, keyMark)
            }
        }
        let team = entry.located("team")
        if let team { teamRefs.append(team) }
        let models = entry.strings("models")
        for model in models ?? [] {
            if model.value.dropLast().contains("*") {
                log.error(model.mark, model.path, "must be a model name, or a prefix ending in a single '*' (like claude-*)")
            } else if !model.value.hasSuffix("*") {
                consumerModelRefs.append(model)
            }
        }
        let expiresAt = readTime(entry, "expires_at")
        let disabled = entry.bool("disabled") ?? false
        let limitsMap = entry.map("limits", section: "consumers[].limits")
        let limits = limitsMap.map(readLimits) ?? QuotaLimits()
        let failure = limitsMap.flatMap { readLeaseFailure($0, "lease_failure", section: "consumers[].limits.lease_failure") }
        guard let name, let digest else { return }
        if let failure { config.leaseFailure[.key(name.value)] = failure }
        config.consumers.append(
            ConsumerSpec(
                name: name.value, keySHA256: digest, team: team?.value, allowedModels: models?.map(\.value), expiresAt: expiresAt,
                disabled: disabled, limits: limits, source: .config))
    }

    /// Unix seconds, or a UTC date (`2027-01-01`) or time (`2027-01-01T12:00:00Z`).
    private func readTime(_ entry: MapReader, _ key: String) -> Int64? {
        guard let node = entry.node(key) else { return nil }
        let path = entry.childPath(key)
        if node.tagName == .int { return MapReader.int(node, path: path, in: 0...253_402_300_799, log: log) }
        guard case .scalar(let scalar) = node, let seconds = unixSeconds(fromUTC: scalar.string) else {
            log.error(node.mark, path, "expected Unix seconds or a UTC date like 2027-01-01 or 2027-01-01T12:00:00Z, got \(describe(node))")
            return nil
        }
        return seconds
    }

    // MARK: Limits and prices

    private func readLimits(_ map: MapReader) -> QuotaLimits {
        let tokens: ClosedRange<Int64> = 1...QuotaLimits.maxTokensPerMinute
        func budget(_ key: String) -> Int64? {
            map.double(key, in: 0...QuotaLimits.maxBudgetUSD).map(PriceTable.micros(fromDollars:))
        }
        return QuotaLimits(
            requestsPerMinute: map.int("requests_per_minute", in: 1...QuotaLimits.maxRequestsPerMinute),
            tokensPerMinute: map.int("tokens_per_minute", in: tokens),
            inputTokensPerMinute: map.int("input_tokens_per_minute", in: tokens),
            outputTokensPerMinute: map.int("output_tokens_per_minute", in: tokens),
            budgetMicrosPerDay: budget("budget_usd_per_day"),
            budgetMicrosPerMonth: budget("budget_usd_per_month"))
    }

    /// `{ policy: fail_closed }` or `{ policy: fail_open, local_cap_percent: N }` under `key`:
    /// what a leased scope does when sluiced is unreachable past its lease (the module's
    /// `LeaseFailureConfig`, with its rules and messages).
    private func readLeaseFailure(_ parent: MapReader, _ key: String, section: String) -> LeaseFailureConfig? {
        guard let map = parent.map(key, section: section) else { return nil }
        let policy = map.located("policy", required: true)
        let percent = map.double("local_cap_percent", in: 0...100)
        switch policy?.value {
        case nil:
            return nil
        case "fail_closed":
            if percent != nil {
                log.error(map.keyMark("local_cap_percent"), map.childPath("local_cap_percent"), "applies only to policy fail_open")
                return nil
            }
            return .failClosed
        case "fail_open":
            guard let percent else {
                log.error(
                    policy?.mark, map.childPath("local_cap_percent"),
                    "is required with policy fail_open: the share of each limit (0 < x ≤ 100) one Envoy may admit per window while sluiced is unreachable")
                return nil
            }
            guard percent > 0 else {
                log.error(map.keyMark("local_cap_percent"), map.childPath("local_cap_percent"), "must be above 0 (use policy fail_closed to refuse)")
                return nil
            }
            return .failOpen(localCapPercent: percent)
        case let other?:
            log.error(policy?.mark, map.childPath("policy"), "must be fail_open or fail_closed, got '\(other.prefix(64))'")
            return nil
        }
    }

    private func readPrice(_ map: MapReader) -> ModelPrice? {
        let range = 0...Double(ModelPrice.maxMicrosPerMillion) / 1_000_000
        let input = map.double("input", in: range, required: true)
        let output = map.double("output", in: range, required: true)
        let cached = map.double("cached_input", in: range)
        let write = map.double("cache_write", in: range)
        let searchUnit = map.double("search_unit", in: 0...Double(ModelPrice.maxSearchUnitMicros) / 1_000_000)
        guard let input, let output else { return nil }
        return ModelPrice(
            inputMicrosPerMillion: PriceTable.micros(fromDollars: input),
            cachedInputMicrosPerMillion: cached.map(PriceTable.micros(fromDollars:)),
            cacheWriteMicrosPerMillion: write.map(PriceTable.micros(fromDollars:)),
            outputMicrosPerMillion: PriceTable.micros(fromDollars: output),
            searchUnitMicros: searchUnit.map(PriceTable.micros(fromDollars:)) ?? 0)
    }

    private func addPrice(_ price: ModelPrice, for model: Located) {
        if let previous = priceMarks.updateValue(model.mark, forKey: model.value) {
            log.error(model.mark, model.path, "model '\(model.value)' already has a price\(at(previous))")
            return
        }
        config.prices[model.value] = price
        pricedOrLimited.append(model)
    }

    private func addLimits(_ limits: QuotaLimits, for model: Located) {
        if let previous = limitMarks.updateValue(model.mark, forKey: model.value) {
            log.error(model.mark, model.path, "model '\(model.value)' already has limits\(at(previous))")
            return
        }
        config.modelLimits[model.value] = limits
        pricedOrLimited.append(model)
    }

    // MARK: Gateway

    private func readGateway(_ map: MapReader) {
        var gateway = SluiceConfig.Gateway()
        gateway.maxRequestBytes = map.int("max_request_bytes", in: 1024...(1 << 30)).map(Int.init)
        if let header = map.located("response_cost_header") {
            let lowered = header.value.lowercased()
            if lowered.utf8.allSatisfy(HTTPToken.isTokenByte) {
                gateway.responseCostHeader = lowered
            } else {
                log.error(header.mark, header.path, "'\(header.value)' is not an HTTP header name")
            }
        }
        gateway.defaultOutputTokensEstimate = map.int("default_output_tokens_estimate", in: 0...10_000_000).map(Int.init)
        gateway.timeoutSeconds = Int(map.int("timeout_seconds", in: 1...86_400) ?? 300)
        if let backend = map.located("default_backend") {
            targets.append(PendingTarget(names: [backend]))
            gateway.defaultBackend = backend.value
        }
        if let jwt = map.map("jwt", section: "gateway.jwt") { gateway.jwt = readJWT(jwt) }
        gateway.quotaLeaseFailure = readLeaseFailure(map, "quota_lease_failure", section: "gateway.quota_lease_failure")
        config.gateway = gateway
    }

    /// The `jwt` block, type-checked here and checked as a whole by the module's own parser.
    private func readJWT(_ map: MapReader) -> JSONValue? {
        var object: [(String, JSONValue)] = []
        for key in ["payload_header", "payload_metadata_key", "metadata_namespace", "subject_claim", "team_claim", "models_claim", "consumer_prefix"] {
            if let value = map.string(key, required: key == "payload_header" || key == "payload_metadata_key", allowEmpty: key == "consumer_prefix") {
                object.append((key, .string(value)))
            }
        }
        if let models = map.strings("models") { object.append(("models", .array(models.map { .string($0.value) }))) }
        if let required = map.bool("required") { object.append(("required", .bool(required))) }
        if let limits = map.map("limits", section: "gateway.jwt.limits") {
            object.append(("limits", ConfigCompiler.json(readLimits(limits))))
        }
        if let subjects = map.int("max_subjects", in: 1...1_048_576) { object.append(("max_subjects", .number(JSONNumber(subjects)))) }
        let value = JSONValue.object(JSONObject(object.map { (key: $0.0, value: $0.1) }))
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("jwt")
        writer.value(value)
        writer.endObject()
        do {
            _ = try GatewayConfig.parse(writer.bytes)
        } catch {
            // The module names the field (`jwt.payload_header`): point at it.
            let field = error.path.split(separator: ".").dropFirst().first.map(String.init)
            let mark = field.flatMap { map.node($0)?.mark } ?? map.mark
            let path = error.path.hasPrefix("jwt") ? "gateway." + error.path : map.path
            log.error(mark, path, error.problem)
            return nil
        }
        return value
    }

    // MARK: References

    private func checkReferences() {
        let backendNames = config.backends.map(\.name)
        for target in targets {
            for name in target.names where backendMarks[name.value] == nil {
                log.error(name.mark, name.path, "unknown backend '\(name.value)'" + Spelling.hint(for: name.value, among: backendNames, noun: "a backend or pool"))
            }
        }
        for (backend, members) in overrideRefs where !members.contains(backend.value) {
            log.error(backend.mark, backend.path, "'\(backend.value)' is not a backend of this model" + Spelling.hint(for: backend.value, among: members))
        }
        for (mark, path, target) in loraModels {
            guard case .backend(let name)? = target, config.backend(named: name)?.loadBalancing.isEndpointPicker == true else {
                log.error(mark, path, "needs the model's 'backend' to be a pool with 'lb: endpoint_picker' (adapters matter only to a picked pool)")
                continue
            }
        }
        let teamNames = config.teams.map(\.name)
        for team in teamRefs where teamMarks[team.value] == nil {
            log.error(team.mark, team.path, "unknown team '\(team.value)'" + Spelling.hint(for: team.value, among: teamNames, noun: "a team of 'teams'"))
        }
        let listed = config.models.flatMap { [$0.id] + $0.aliases }
        func routable(_ model: String) -> Bool {
            modelNames[model] != nil || config.routes.contains { $0.takes(model) }
        }
        for model in consumerModelRefs where !routable(model.value) {
            log.error(model.mark, model.path, "unknown model '\(model.value)'" + Spelling.hint(for: model.value, among: listed, noun: "a listed model"))
        }
        for model in pricedOrLimited where !routable(model.value) {
            log.error(model.mark, model.path, "no model '\(model.value)' is listed or taken by a route" + Spelling.hint(for: model.value, among: listed, noun: "a listed model"))
        }
        for (model, node) in zip(config.models, modelNodes) where model.target == nil && !node.hasTarget {
            let ids = [model.id] + model.aliases
            if !ids.allSatisfy({ id in config.routes.contains { $0.takes(id) } }) {
                log.error(node.mark, node.path, "model '\(model.id)' is routed to nothing: give it 'backend' or 'fallback', or add a rule to 'routes' that takes it")
            }
        }
        // A model's upstream name for a backend must agree with the backend's own model_overrides.
        for (model, node) in zip(config.models, modelNodes) {
            guard let target = model.target else { continue }
            for backendName in target.backendNames {
                guard let upstream = model.upstreamName(for: backendName), let backend = config.backend(named: backendName) else {
                    continue
                }
                for id in [model.id] + model.aliases {
                    if let existing = backend.modelOverrides[id], existing != upstream {
                        log.error(node.mark, node.path, "model '\(id)' is sent to backend '\(backendName)' as '\(upstream)', but that backend's model_overrides say '\(existing)'")
                    }
                }
            }
        }
    }

    private func at(_ mark: Mark??) -> String {
        guard let mark = mark ?? nil else { return "" }
        return " (line \(mark.line))"
    }
}

extension SluiceConfig.Endpoint {
    /// Whether `text` is an IPv4 or IPv6 literal.
    static func isIPLiteral(_ text: String) -> Bool {
        EndpointPlan(host: text, port: 0).isIPAddress
    }
}

/// Unix seconds of a UTC date `YYYY-MM-DD` or time `YYYY-MM-DDTHH:MM:SS[Z]` (also with a space).
func unixSeconds(fromUTC text: String) -> Int64? {
    var text = Substring(text)
    if text.hasSuffix("Z") || text.hasSuffix("z") { text.removeLast() }
    let parts = text.split(whereSeparator: { $0 == "T" || $0 == "t" || $0 == " " })
    guard parts.count == 1 || parts.count == 2 else { return nil }
    let date = parts[0].split(separator: "-", omittingEmptySubsequences: false)
    guard date.count == 3, date[0].count == 4, date[1].count == 2, date[2].count == 2,
        let year = Int64(date[0]), let month = Int64(date[1]), let day = Int64(date[2]),
        (1...12).contains(month), (1...31).contains(day), year >= 1970
    else { return nil }
    var seconds: Int64 = 0
    if parts.count == 2 {
        let time = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        guard time.count == 3, let hour = Int64(time[0]), let minute = Int64(time[1]), let second = Int64(time[2]),
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        seconds = hour * 3600 + minute * 60 + second
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = month <= 2 ? year - 1 : year
    let era = y / 400
    let yearOfEra = y - era * 400
    let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    let days = era * 146_097 + dayOfEra - 719_468
    return days * 86_400 + seconds
}
