// `SluiceConfig` → `EnvoyPlan`: listeners and their route tables, one cluster per backend,
// member and aggregate clusters per fallback, the secrets credentials name, the `sluice`
// filter's JSON and each cluster's `sluice_upstream` JSON. The JSON is written with SluiceCore's
// `JSONWriter` and read back with the module's own parsers before the plan is returned, so
// sluiced never serves a config the module would refuse.
internal import SluiceCore

extension SluiceConfig {
    /// Compiles the config, with the admin database's consumers and teams merged in (the
    /// database wins a name both define), into the resources of one gateway.
    /// - Parameters:
    ///   - databaseConsumers: consumers from the admin API's database.
    ///   - databaseTeams: teams from the admin API's database.
    /// - Returns: a plan that passes `EnvoyPlan.validate()` and whose module configs the module parses.
    /// - Throws: `ConfigCompileError` when the merged result is inconsistent (two consumers with
    ///   the same key, a name clash between generated clusters) or the module refuses a config.
    public func compile(databaseConsumers: [ConsumerSpec] = [], databaseTeams: [TeamSpec] = []) throws(ConfigCompileError) -> EnvoyPlan {
        try ConfigCompiler(config: self).compile(databaseConsumers: databaseConsumers, databaseTeams: databaseTeams)
    }
}

struct ConfigCompiler {
    let config: SluiceConfig

    func compile(databaseConsumers: [ConsumerSpec], databaseTeams: [TeamSpec]) throws(ConfigCompileError) -> EnvoyPlan {
        var plan = EnvoyPlan()
        var problems: [String] = []

        // Secrets, and each backend's upstream config.
        var backendJSON: [String: JSONValue] = [:]
        var backendSecrets: [String: [String]] = [:]
        for backend in config.backends {
            var secretNames: [String] = []
            func reference(_ credential: SluiceConfig.Credential, _ suffix: String) -> JSONValue {
                let name = "\(backend.name)-\(suffix)"
                switch credential {
                case .sds(let external, let path):
                    var members: [JSONObject.Member] = [("secret", .string(external))]
                    if let path { members.append(("sds_path", .string(path))) }
                    return .object(JSONObject(members))
                case .environment(let variable):
                    plan.secrets.append(SecretPlan(name: name, source: .environment(variable)))
                case .file(let path):
                    plan.secrets.append(SecretPlan(name: name, source: .file(path)))
                case .demoValue(let value):
                    plan.secrets.append(SecretPlan(name: name, source: .literal(value)))
                }
                secretNames.append(name)
                return ["secret": .string(name), "sds": "ads"]
            }
            var members: [JSONObject.Member] = [("backend", .string(backend.name)), ("schema", .string(backend.schema.rawValue))]
            if let credential = backend.credential { members.append(("credential", reference(credential, "key"))) }
            let overrides = modelOverrides(of: backend)
            if !overrides.isEmpty {
                members.append(("model_overrides", .object(JSONObject(overrides.map { ($0.key, .string($0.value)) }))))
            }
            if let tokens = backend.defaultMaxTokens { members.append(("default_max_tokens", .number(JSONNumber(tokens)))) }
            if let prefix = backend.pathPrefix { members.append(("path_prefix", .string(prefix))) }
            if let serves = backend.servesResponses { members.append(("responses_api", .bool(serves))) }
            if let host = authority(of: backend) { members.append(("host", .string(host))) }
            if let version = backend.azureAPIVersion { members.append(("azure", ["api_version": .string(version)])) }
            if let aws = backend.aws {
                var settings: [JSONObject.Member] = [
                    ("region", .string(aws.region)),
                    ("access_key_id", reference(aws.accessKeyID, "aws-access-key-id")),
                    ("secret_access_key", reference(aws.secretAccessKey, "aws-secret-access-key")),
                ]
                if let token = aws.sessionToken { settings.append(("session_token", reference(token, "aws-session-token"))) }
                members.append(("aws", .object(JSONObject(settings))))
            }
            if let gcp = backend.gcp { members.append(("gcp", ["project": .string(gcp.project), "location": .string(gcp.location)])) }
            backendJSON[backend.name] = .object(JSONObject(members))
            backendSecrets[backend.name] = secretNames
        }

        // One cluster per backend.
        for backend in config.backends {
            let json = backendJSON[backend.name] ?? .null
            var cluster = ClusterPlan(
                name: backend.name,
                kind: .endpoints(backend.endpoints.map { EndpointPlan(host: $0.host, port: $0.port) }),
                upstreamTLS: upstreamTLS(of: backend), http2: backend.http2,
                upstreamFilterConfig: write(json), secretNames: backendSecrets[backend.name] ?? [])
            switch backend.loadBalancing {
            case .roundRobin: break
            case .leastRequest: cluster.loadBalancer = .leastRequest
            case .endpointPicker(let settings):
                cluster.loadBalancer = .module(policy: EnvoyPlan.endpointPickerPolicy, config: write(pickerJSON(backend, settings)))
            }
            plan.clusters.append(cluster)
        }
        // The worker's scrapes of the picker pools' /metrics go through one ORIGINAL_DST cluster
        // (the worker's `endpoint_metrics.cluster` default).
        if config.backends.contains(where: { $0.loadBalancing.isEndpointPicker }) {
            plan.clusters.append(ClusterPlan(name: EnvoyPlan.endpointMetricsCluster, kind: .originalDestination, connectTimeoutMillis: 250))
        }

        // Fallbacks: a member cluster per backend (hosts tagged with their backend) and an aggregate.
        var fallbacks: [[String]] = []
        for target in allTargets() {
            if case .fallback(let names) = target, !fallbacks.contains(names) { fallbacks.append(names) }
        }
        for names in fallbacks {
            let group = SluiceConfig.Target.fallback(names).routeName
            var memberClusters: [String] = []
            var upstream: [JSONValue] = []
            var secrets: [String] = []
            for name in names {
                guard let backend = config.backend(named: name) else { continue }
                let member = "\(group)-\(name)"
                memberClusters.append(member)
                plan.clusters.append(
                    ClusterPlan(
                        name: member,
                        kind: .endpoints(backend.endpoints.map { EndpointPlan(host: $0.host, port: $0.port, backend: name) }),
                        upstreamTLS: upstreamTLS(of: backend), http2: backend.http2))
                upstream.append(backendJSON[name] ?? .null)
                secrets += backendSecrets[name] ?? []
            }
            plan.clusters.append(
                ClusterPlan(
                    name: group, kind: .aggregate(memberClusters),
                    upstreamFilterConfig: write(["backends": .array(upstream)]), secretNames: secrets))
        }

        // Routes: one per backend, one per fallback, then the catch-all.
        var routes: [RoutePlan] = config.backends.map {
            RoutePlan(routeName: $0.name, cluster: $0.name, timeoutSeconds: config.gateway.timeoutSeconds)
        }
        for names in fallbacks {
            let group = SluiceConfig.Target.fallback(names).routeName
            routes.append(
                RoutePlan(
                    routeName: group, cluster: group, timeoutSeconds: config.gateway.timeoutSeconds,
                    retry: RetryPlan(numRetries: names.count)))
        }
        if let backend = config.gateway.defaultBackend {
            routes.append(RoutePlan(routeName: nil, cluster: backend, timeoutSeconds: config.gateway.timeoutSeconds))
        }
        plan.listeners = config.listeners.map {
            ListenerPlan(name: $0.name, address: $0.address, port: $0.port, tls: $0.tls, routes: routes, accessLog: $0.accessLog)
        }

        // The gateway filter.
        let consumers = ConsumerSpec.merged(config: config.consumers, database: databaseConsumers)
        let teams = TeamSpec.merged(config: config.teams, database: databaseTeams)
        var owners: [SHA256Digest: String] = [:]
        for consumer in consumers {
            if let owner = owners.updateValue(consumer.name, forKey: consumer.keySHA256) {
                problems.append("consumers '\(owner)' and '\(consumer.name)' have the same key")
            }
        }
        plan.gatewayFilterConfig = write(gatewayJSON(consumers: consumers, teams: teams))

        problems += plan.validate()
        problems += moduleProblems(plan)
        guard problems.isEmpty else { throw ConfigCompileError(problems: problems) }
        return plan
    }

    // MARK: - Pieces

    private func allTargets() -> [SluiceConfig.Target] {
        config.models.compactMap(\.target) + config.routes.map(\.target)
    }

    /// The backend's own overrides plus, for every model routed to it, the model's upstream name
    /// (for the model's id and aliases), sorted by client model name.
    private func modelOverrides(of backend: SluiceConfig.Backend) -> [(key: String, value: String)] {
        var overrides = backend.modelOverrides
        for model in config.models {
            guard let target = model.target, target.backendNames.contains(backend.name),
                let upstream = model.upstreamName(for: backend.name)
            else { continue }
            for id in [model.id] + model.aliases where id != upstream { overrides[id] = upstream }
        }
        // An alias without an upstream name of its own is sent upstream as its model's id would be.
        for model in config.models where model.upstreamName(for: backend.name) == nil {
            guard let target = model.target, target.backendNames.contains(backend.name) else { continue }
            for alias in model.aliases where overrides[alias] == nil { overrides[alias] = overrides[model.id] ?? model.id }
        }
        return overrides.sorted { $0.key < $1.key }
    }

    /// The `:authority` a backend reached by DNS name expects (IP-addressed servers take Envoy's).
    private func authority(of backend: SluiceConfig.Backend) -> String? {
        guard let first = backend.endpoints.first, !EndpointPlan(host: first.host, port: first.port).isIPAddress else { return nil }
        let defaultPort = backend.tls ? 443 : 80
        return first.port == defaultPort ? first.host : "\(first.host):\(first.port)"
    }

    private func upstreamTLS(of backend: SluiceConfig.Backend) -> UpstreamTLSPlan? {
        guard backend.tls, let first = backend.endpoints.first else { return nil }
        return UpstreamTLSPlan(sni: first.host, verify: backend.tlsVerify)
    }

    private func gatewayJSON(consumers: [ConsumerSpec], teams: [TeamSpec]) -> JSONValue {
        var root: [JSONObject.Member] = []
        root.append(
            (
                "api_keys",
                .array(
                    consumers.map { consumer in
                        var key: [JSONObject.Member] = [("name", .string(consumer.name)), ("key_sha256", .string(consumer.keySHA256.hex))]
                        if let team = consumer.team { key.append(("team", .string(team))) }
                        if let models = consumer.allowedModels { key.append(("models", .array(models.map { .string($0) }))) }
                        if let expiry = consumer.expiresAt { key.append(("expires_at", .number(JSONNumber(expiry)))) }
                        if consumer.disabled { key.append(("revoked", true)) }
                        if !consumer.limits.isEmpty {
                            key.append(("limits", Self.json(consumer.limits, leaseFailure: config.leaseFailure[.key(consumer.name)])))
                        }
                        return .object(JSONObject(key))
                    })
            ))

        // Models: listed with their route, unless a header rule must be tried before them.
        let headerRules = config.routes.filter { !$0.headers.isEmpty }
        var models: [JSONValue] = []
        var deferred: [RouteRule] = []
        for model in config.models {
            for id in [model.id] + model.aliases {
                var entry: [JSONObject.Member] = [
                    ("id", .string(id)), ("owned_by", .string(model.ownedBy)), ("created", .number(JSONNumber(model.created))),
                ]
                if case .backend(let name)? = model.target, config.backend(named: name)?.loadBalancing.isEndpointPicker == true {
                    // The filter hands the prompt's prefix blocks (and the adapter) to the picker.
                    entry.append(("endpoint_picking", true))
                    if model.loraAdapter { entry.append(("lora_adapter", true)) }
                }
                if let target = model.target {
                    if headerRules.contains(where: { $0.takes(id) }) {
                        deferred.append(RouteRule(name: target.routeName, models: [id]))
                    } else {
                        entry.append(("route", .string(target.routeName)))
                    }
                }
                models.append(.object(JSONObject(entry)))
            }
        }
        root.append(("models", .array(models)))

        // Rules: header rules first, then the models they shadow, then the others in order.
        var rules: [RouteRule] = headerRules.map(routeRule)
        rules += deferred
        rules += config.routes.filter { $0.headers.isEmpty }.map(routeRule)
        if !rules.isEmpty {
            root.append(
                (
                    "routes",
                    .array(
                        rules.map { rule in
                            var entry: [JSONObject.Member] = [("name", .string(rule.name))]
                            if !rule.models.isEmpty { entry.append(("models", .array(rule.models.map { .string($0) }))) }
                            if let prefix = rule.modelPrefix { entry.append(("model_prefix", .string(prefix))) }
                            if !rule.headers.isEmpty {
                                entry.append(("headers", .object(JSONObject(rule.headers.map { ($0.name, .string($0.value)) }))))
                            }
                            return .object(JSONObject(entry))
                        })
                ))
        }
        if let bytes = config.gateway.maxRequestBytes { root.append(("max_request_bytes", .number(JSONNumber(bytes)))) }
        if !teams.isEmpty {
            root.append(
                (
                    "team_limits",
                    .object(JSONObject(teams.map { ($0.name, Self.json($0.limits, leaseFailure: config.leaseFailure[.team($0.name)])) }))
                ))
        }
        if !config.modelLimits.isEmpty {
            root.append(
                (
                    "model_limits",
                    .object(
                        JSONObject(
                            config.modelLimits.sorted { $0.key < $1.key }.map {
                                ($0.key, Self.json($0.value, leaseFailure: config.leaseFailure[.model($0.key)]))
                            }))
                ))
        }
        if let failure = config.gateway.quotaLeaseFailure { root.append(("quota_lease_failure", Self.json(failure))) }
        if !config.prices.isEmpty {
            root.append(("prices", .object(JSONObject(config.prices.sorted { $0.key < $1.key }.map { ($0.key, Self.json($0.value)) }))))
        }
        if let estimate = config.gateway.defaultOutputTokensEstimate {
            root.append(("default_output_tokens_estimate", .number(JSONNumber(estimate))))
        }
        if let header = config.gateway.responseCostHeader { root.append(("response_cost_header", .string(header))) }
        if let jwt = config.gateway.jwt { root.append(("jwt", jwt)) }
        // Only the metadata an access log prints: each key written costs Envoy a Struct edit per request.
        let logged = config.listeners.contains(where: \.accessLog) ? AccessLog.metadataKeys : []
        root.append(("metadata_keys", .array(logged.map { .string($0) })))
        return .object(JSONObject(root))
    }

    /// The picker's `lb_policy_config`: the pool, its endpoints as Envoy names hosts (the scrape
    /// list) and the `endpoint_picker` settings.
    private func pickerJSON(_ backend: SluiceConfig.Backend, _ settings: JSONObject) -> JSONValue {
        let endpoints: [JSONValue] = backend.endpoints.map { endpoint in
            .string(endpoint.host.contains(":") ? "[\(endpoint.host)]:\(endpoint.port)" : "\(endpoint.host):\(endpoint.port)")
        }
        return .object(JSONObject([("pool", .string(backend.name)), ("endpoints", .array(endpoints))] + settings.members))
    }

    private func routeRule(_ route: SluiceConfig.Route) -> RouteRule {
        RouteRule(
            name: route.target.routeName, models: route.models, modelPrefix: route.modelPrefix,
            headers: route.headers.map { ($0.name, $0.value) })
    }

    /// Parses every module config of the plan with the module's own parsers.
    private func moduleProblems(_ plan: EnvoyPlan) -> [String] {
        var problems: [String] = []
        do {
            _ = try GatewayConfig.parse(plan.gatewayFilterConfig)
        } catch {
            problems.append("the sluice filter refuses its generated config: \(error)")
        }
        for cluster in plan.clusters {
            if case .module(let policy, let bytes) = cluster.loadBalancer, policy == EnvoyPlan.endpointPickerPolicy {
                do {
                    _ = try EndpointPickerConfig.parse(bytes)
                } catch {
                    problems.append("cluster '\(cluster.name)': the endpoint picker refuses its generated config: \(error)")
                }
            }
            guard let bytes = cluster.upstreamFilterConfig else { continue }
            do {
                _ = try UpstreamConfig.parse(bytes)
            } catch {
                problems.append("cluster '\(cluster.name)': the sluice_upstream filter refuses its generated config: \(error)")
            }
        }
        return problems
    }

    private func write(_ value: JSONValue) -> [UInt8] {
        var writer = JSONWriter()
        writer.value(value)
        return writer.bytes
    }

    // MARK: - JSON of limits and prices

    /// `{"requests_per_minute": …, "budget_usd_per_day": …}` with only the limited dimensions.
    /// With `leaseFailure`, the scope's `lease_failure` too.
    static func json(_ limits: QuotaLimits, leaseFailure: LeaseFailureConfig? = nil) -> JSONValue {
        var members: [JSONObject.Member] = []
        func add(_ key: String, _ value: Int64?) { if let value { members.append((key, .number(JSONNumber(value)))) } }
        add("requests_per_minute", limits.requestsPerMinute)
        add("tokens_per_minute", limits.tokensPerMinute)
        add("input_tokens_per_minute", limits.inputTokensPerMinute)
        add("output_tokens_per_minute", limits.outputTokensPerMinute)
        if let micros = limits.budgetMicrosPerDay { members.append(("budget_usd_per_day", dollars(micros))) }
        if let micros = limits.budgetMicrosPerMonth { members.append(("budget_usd_per_month", dollars(micros))) }
        if let leaseFailure { members.append(("lease_failure", json(leaseFailure))) }
        return .object(JSONObject(members))
    }

    /// `{"policy": "fail_closed"}` or `{"policy": "fail_open", "local_cap_percent": N}`, as the
    /// module's `LeaseFailureConfig.read` takes it.
    static func json(_ failure: LeaseFailureConfig) -> JSONValue {
        switch failure {
        case .failClosed:
            return .object(JSONObject([("policy", .string("fail_closed"))]))
        case .failOpen(let percent):
            // The loader keeps it in 0 < x ≤ 100: a whole number or its shortest decimal text.
            let number =
                percent == percent.rounded() ? JSONNumber(Int64(percent)) : (JSONNumber(String(percent)) ?? JSONNumber(Int64(percent)))
            return .object(JSONObject([("policy", .string("fail_open")), ("local_cap_percent", .number(number))]))
        }
    }

    /// A price; cached reads and cache writes only when they differ from the input rate (their default).
    static func json(_ price: ModelPrice) -> JSONValue {
        var members: [JSONObject.Member] = [("input", dollars(price.inputMicrosPerMillion))]
        if price.cachedInputMicrosPerMillion != price.inputMicrosPerMillion {
            members.append(("cached_input", dollars(price.cachedInputMicrosPerMillion)))
        }
        if price.cacheWriteMicrosPerMillion != price.inputMicrosPerMillion {
            members.append(("cache_write", dollars(price.cacheWriteMicrosPerMillion)))
        }
        members.append(("output", dollars(price.outputMicrosPerMillion)))
        if price.searchUnitMicros != 0 { members.append(("search_unit", dollars(price.searchUnitMicros))) }
        return .object(JSONObject(members))
    }

    /// Micro-dollars as an exact decimal number of dollars (`75000` → `0.075`).
    static func dollars(_ micros: Int64) -> JSONValue {
        let whole = micros / 1_000_000
        var fraction = String(micros % 1_000_000)
        guard fraction != "0" else { return .number(JSONNumber(whole)) }
        fraction = String(repeating: "0", count: 6 - fraction.count) + fraction
        while fraction.hasSuffix("0") { fraction.removeLast() }
        return .number(JSONNumber("\(whole).\(fraction)") ?? JSONNumber(whole))
    }
}

/// Test access to the compiler's number formatting.
package enum ConfigCompilerProbe {
    package static func dollars(_ micros: Int64) -> String {
        var writer = JSONWriter()
        writer.value(ConfigCompiler.dollars(micros))
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}
