// The embedded default is envoy-module/sluice.yaml, and it says what envoy-module/envoy.yaml
// (the static config of the same demo gateway, `sluiced render`'s output) says: same listener,
// models, routes, backends, failover, keys, limits and prices, compared as the module reads them.
import Foundation
import SluiceControl
import SluiceCore
import Testing

@Suite struct DefaultConfigTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    static func read(_ path: String) throws -> String {
        try String(contentsOf: repository.appendingPathComponent(path), encoding: .utf8)
    }

    @Test func theEmbeddedDefaultIsTheShippedFile() throws {
        #expect(try Self.read("envoy-module/sluice.yaml") == SluiceConfig.defaultYAML)
    }

    @Test func theDefaultLoadsWithOnlyThePlaintextDemoKeyWarning() throws {
        let loaded = try SluiceConfig.loadDefault()
        #expect(loaded.warnings.map(\.path) == ["consumers[0].key"])
        #expect(loaded.warnings.first?.file == SluiceConfig.defaultFileName)
        let plan = try loaded.config.compile()
        #expect(plan.validate().isEmpty)
        // Short: one line per backend and model; it grew with each backend schema and endpoint family
        // the demo serves (every one of them), not with per-model ceremony.
        #expect(SluiceConfig.defaultYAML.split(separator: "\n").count <= 64)
    }

    // MARK: - The same gateway as envoy.yaml

    /// What the comparison needs of a gateway, from either side.
    struct Gateway {
        var listener: (address: String, port: Int)
        /// `x-sluice-route` value (nil: catch-all) → cluster.
        var routes: [String?: String]
        var retries: [String: (retryOn: String, codes: [Int], count: Int)]
        /// Cluster → its host:port list, and the backend named by each host's metadata.
        var endpoints: [String: [String]]
        /// Cluster → the upstream filter's backends.
        var upstream: [String: UpstreamConfig]
        /// Cluster → members (aggregate clusters).
        var aggregates: [String: [String]]
        /// Secret name → value.
        var secrets: [String: String]
        var filter: GatewayConfig
        var filterJSON: JSONValue
        var upstreamJSON: [String: JSONValue]

        /// The backends that serve `routeName`, in order, with where each lives.
        func backends(route routeName: String?) -> [String] {
            guard let cluster = routes[routeName] else { return [] }
            return (upstream[cluster]?.backends ?? []).map(\.name)
        }

        /// The backend config named `backend` as reached through `routeName`.
        func backend(_ backend: String, route routeName: String?) -> BackendConfig? {
            routes[routeName].flatMap { upstream[$0]?.backend(named: backend) }
        }

        /// The value of the secret a credential JSON object names.
        func secretValue(_ credential: JSONValue?) -> String? {
            guard let credential else { return nil }
            if let value = credential["value"]?.stringValue { return value }
            return credential["secret"]?.stringValue.flatMap { secrets[$0] }
        }

        /// Host:port of the hosts of `backend` wherever it is a cluster of its own.
        func hosts(route routeName: String) -> [String] {
            guard let cluster = routes[routeName] else { return [] }
            if let members = aggregates[cluster] { return members.flatMap { endpoints[$0] ?? [] } }
            return endpoints[cluster] ?? []
        }
    }

    static func fromEnvoyYAML() throws -> Gateway {
        let root = try YAMLJSON.parse(try read("envoy-module/envoy.yaml"))
        let resources = try #require(root["static_resources"])
        var secrets: [String: String] = [:]
        for secret in resources["secrets"]?.arrayValue ?? [] {
            secrets[secret["name"]?.stringValue ?? ""] = secret["generic_secret"]?["secret"]?["inline_string"]?.stringValue
        }
        let listener = try #require(resources["listeners"]?.arrayValue?.first)
        let socket = try #require(listener["address"]?["socket_address"])
        let manager = try #require(listener["filter_chains"]?.arrayValue?.first?["filters"]?.arrayValue?.first?["typed_config"])
        var routes: [String?: String] = [:]
        var retries: [String: (String, [Int], Int)] = [:]
        for route in manager["route_config"]?["virtual_hosts"]?.arrayValue?.first?["routes"]?.arrayValue ?? [] {
            let name = route["match"]?["headers"]?.arrayValue?.first?["string_match"]?["exact"]?.stringValue
            let cluster = try #require(route["route"]?["cluster"]?.stringValue)
            routes[name] = cluster
            if let retry = route["route"]?["retry_policy"] {
                retries[cluster] = (
                    retry["retry_on"]?.stringValue ?? "", (retry["retriable_status_codes"]?.arrayValue ?? []).compactMap { $0.int64Value.map(Int.init) },
                    Int(retry["num_retries"]?.int64Value ?? 0)
                )
            }
        }
        let filters = manager["http_filters"]?.arrayValue ?? []
        let sluice = try #require(filters.first { $0["typed_config"]?["filter_name"]?.stringValue == "sluice" })
        let filterJSON = try configJSON(try #require(sluice["typed_config"]?["filter_config"]?["value"]))
        var endpoints: [String: [String]] = [:]
        var upstream: [String: UpstreamConfig] = [:]
        var upstreamJSON: [String: JSONValue] = [:]
        var aggregates: [String: [String]] = [:]
        for cluster in resources["clusters"]?.arrayValue ?? [] {
            let name = try #require(cluster["name"]?.stringValue)
            var hosts: [String] = []
            for locality in cluster["load_assignment"]?["endpoints"]?.arrayValue ?? [] {
                for host in locality["lb_endpoints"]?.arrayValue ?? [] {
                    let address = try #require(host["endpoint"]?["address"]?["socket_address"])
                    let backend = host["metadata"]?["filter_metadata"]?["sluice"]?["backend"]?.stringValue
                    hosts.append("\(address["address"]?.stringValue ?? ""):\(address["port_value"]?.int64Value ?? 0)" + (backend.map { " \($0)" } ?? ""))
                }
            }
            endpoints[name] = hosts
            if let members = cluster["cluster_type"]?["typed_config"]?["clusters"]?.arrayValue {
                aggregates[name] = members.compactMap(\.stringValue)
            }
            let options = cluster["typed_extension_protocol_options"]?["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
            for filter in options?["http_filters"]?.arrayValue ?? [] where filter["typed_config"]?["filter_name"]?.stringValue == "sluice_upstream" {
                let value = try configJSON(try #require(filter["typed_config"]?["filter_config"]?["value"]))
                upstreamJSON[name] = value
                upstream[name] = try UpstreamConfig.parse(bytes(value))
            }
        }
        return Gateway(
            listener: (socket["address"]?.stringValue ?? "", Int(socket["port_value"]?.int64Value ?? 0)), routes: routes,
            retries: retries, endpoints: endpoints, upstream: upstream, aggregates: aggregates, secrets: secrets,
            filter: try GatewayConfig.parse(bytes(filterJSON)), filterJSON: filterJSON, upstreamJSON: upstreamJSON)
    }

    static func fromPlan() throws -> Gateway {
        let plan = try SluiceConfig.loadDefault().config.compile()
        let listener = try #require(plan.listeners.first)
        var routes: [String?: String] = [:]
        var retries: [String: (String, [Int], Int)] = [:]
        for route in listener.routes {
            routes[route.routeName] = route.cluster
            if let retry = route.retry {
                #expect(retry.nextPriorityOnRetry)
                retries[route.cluster] = (retry.retryOn, retry.retriableStatusCodes, retry.numRetries)
            }
        }
        var endpoints: [String: [String]] = [:]
        var upstream: [String: UpstreamConfig] = [:]
        var upstreamJSON: [String: JSONValue] = [:]
        var aggregates: [String: [String]] = [:]
        for cluster in plan.clusters {
            switch cluster.kind {
            case .endpoints(let hosts): endpoints[cluster.name] = hosts.map { "\($0.host):\($0.port)" + ($0.backend.map { " \($0)" } ?? "") }
            case .aggregate(let members): aggregates[cluster.name] = members
            case .originalDestination: endpoints[cluster.name] = ["original destination"]
            }
            if let bytes = cluster.upstreamFilterConfig {
                upstream[cluster.name] = try parseUpstream(bytes)
                upstreamJSON[cluster.name] = try JSONParser.parse(bytes)
            }
        }
        var secrets: [String: String] = [:]
        for secret in plan.secrets {
            guard case .literal(let value) = secret.source else {
                Issue.record("the demo's secrets are the simulators' literal fake keys")
                continue
            }
            secrets[secret.name] = value
        }
        return Gateway(
            listener: (listener.address, listener.port), routes: routes, retries: retries, endpoints: endpoints, upstream: upstream,
            aggregates: aggregates, secrets: secrets, filter: try GatewayConfig.parse(plan.gatewayFilterConfig),
            filterJSON: try JSONParser.parse(plan.gatewayFilterConfig), upstreamJSON: upstreamJSON)
    }

    /// A filter_config's `value` as JSON: a Struct's as it is, a StringValue's (what `sluiced
    /// render` writes) parsed.
    static func configJSON(_ value: JSONValue) throws -> JSONValue {
        guard let text = value.stringValue else { return value }
        return try JSONParser.parse(Array(text.utf8))
    }

    static func bytes(_ value: JSONValue) -> [UInt8] {
        var writer = JSONWriter()
        writer.value(value)
        return writer.bytes
    }

    @Test func theDefaultIsTheGatewayOfEnvoyYAML() throws {
        let envoy = try Self.fromEnvoyYAML()
        let plan = try Self.fromPlan()

        #expect(plan.listener == envoy.listener)
        // Keys, limits, prices and the request size limit: equal as the module reads them.
        #expect(plan.filter.apiKeys == envoy.filter.apiKeys)
        #expect(plan.filter.teamLimits == envoy.filter.teamLimits)
        #expect(plan.filter.modelLimits == envoy.filter.modelLimits)
        #expect(plan.filter.prices == envoy.filter.prices)
        #expect(plan.filter.maxRequestBytes == envoy.filter.maxRequestBytes)
        #expect(plan.filter.routes == envoy.filter.routes)
        #expect(plan.filter.jwt == envoy.filter.jwt && plan.filter.responseCostHeader == envoy.filter.responseCostHeader)

        // Every model: listed the same, served by the same backends in the same order, on the
        // same hosts, sent upstream under the same name. Route and cluster names may differ
        // (the plan names a fallback after its members).
        #expect(plan.filter.models.map(\.id) == envoy.filter.models.map(\.id))
        for (mine, theirs) in zip(plan.filter.models, envoy.filter.models) {
            #expect(mine.ownedBy == theirs.ownedBy && mine.created == theirs.created, "\(mine.id)")
            let backends = plan.backends(route: mine.route)
            #expect(!backends.isEmpty && backends == envoy.backends(route: theirs.route), "\(mine.id)")
            #expect(plan.hosts(route: mine.route ?? "") == envoy.hosts(route: theirs.route ?? ""), "\(mine.id)")
            for backend in backends {
                let a = plan.backend(backend, route: mine.route)
                let b = envoy.backend(backend, route: theirs.route)
                #expect(a?.upstreamModel(for: mine.id) == b?.upstreamModel(for: theirs.id), "\(mine.id) on \(backend)")
            }
            let retryA = plan.routes[mine.route].flatMap { plan.retries[$0] }
            let retryB = envoy.routes[theirs.route].flatMap { envoy.retries[$0] }
            #expect(retryA?.retryOn == retryB?.retryOn && retryA?.codes == retryB?.codes && retryA?.count == retryB?.count, "\(mine.id)")
        }
        // The catch-all goes to the same backend.
        #expect(plan.backends(route: nil) == envoy.backends(route: nil) && plan.backends(route: nil) == ["local"])

        // Every backend cluster: the same settings and the same credential values. (Overrides
        // may differ where no routed model uses them: the plan gives a backend one config
        // wherever it appears.)
        // Envoy route name → plan route name, as the models pair them.
        var routeNames: [String: String] = [:]
        for (mine, theirs) in zip(plan.filter.models, envoy.filter.models) {
            if let a = mine.route, let b = theirs.route { routeNames[b] = a }
        }
        for (cluster, theirs) in envoy.upstream {
            let envoyRoute = try #require(envoy.routes.first { $0.key != nil && $0.value == cluster }?.key ?? nil, "\(cluster)")
            let planCluster = try #require(routeNames[envoyRoute].flatMap { plan.routes[$0] }, "\(cluster)")
            let mine = try #require(plan.upstream[planCluster])
            #expect(mine.backends.map(\.name) == theirs.backends.map(\.name), "\(cluster)")
            for (a, b) in zip(mine.backends, theirs.backends) {
                #expect(a.schema == b.schema && a.azureAPIVersion == b.azureAPIVersion && a.defaultMaxTokens == b.defaultMaxTokens, "\(cluster)")
                #expect(a.pathPrefix == b.pathPrefix && a.host == b.host && a.aws?.region == b.aws?.region, "\(cluster)")
                #expect(a.gcp?.project == b.gcp?.project && a.gcp?.location == b.gcp?.location, "\(cluster)")
            }
            let mineJSON = try #require(plan.upstreamJSON[planCluster])
            let theirsJSON = try #require(envoy.upstreamJSON[cluster])
            let mineList = mineJSON["backends"]?.arrayValue ?? [mineJSON]
            let theirsList = theirsJSON["backends"]?.arrayValue ?? [theirsJSON]
            for (a, b) in zip(mineList, theirsList) {
                #expect(plan.secretValue(a["credential"]) == envoy.secretValue(b["credential"]), "\(cluster)")
                #expect(plan.secretValue(a["aws"]?["access_key_id"]) == envoy.secretValue(b["aws"]?["access_key_id"]), "\(cluster)")
                #expect(plan.secretValue(a["aws"]?["secret_access_key"]) == envoy.secretValue(b["aws"]?["secret_access_key"]), "\(cluster)")
            }
        }
    }
}
