import Foundation
import SluiceControl
import SluiceCore
import SluiceXDSProto
import SwiftProtobuf
import Testing

@testable import SluiceXDS

@Suite struct EncodingTests {
    let resources: XDSResources

    init() throws {
        resources = try ResourceEncoder.encode(TestPlans.demo())
    }

    func decode<M: SwiftProtobuf.Message>(_ type: M.Type, _ xds: XDSType, _ name: String) throws -> M {
        let resource = try #require(resources[xds].first { $0.name == name })
        #expect(resource.resource.typeURL == xds.typeURL)
        return try M(unpackingAny: resource.resource)
    }

    @Test func namesAndTypeURLs() {
        #expect(resources.names(.listener) == ["gateway"])
        #expect(resources.names(.route) == ["gateway"])
        #expect(resources.names(.cluster) == ["openai", "azure", "failover-openai", "failover-azure", "failover"])
        // EDS only for clusters of IP endpoints; the DNS cluster and the aggregate have none.
        #expect(resources.names(.endpoint) == ["openai", "failover-openai", "failover-azure"])
        #expect(resources.names(.secret) == ["openai-key", "azure-key"])
        #expect(resources.names(.extensionConfig) == [EnvoyPlan.gatewayFilterConfigName])
        for type in XDSType.allCases {
            for resource in resources[type] { #expect(resource.resource.typeURL == type.typeURL) }
        }
    }

    @Test func listenerTakesRoutesOverRDSAndTheFilterConfigOverECDS() throws {
        let listener = try decode(Envoy_Config_Listener_V3_Listener.self, .listener, "gateway")
        #expect(listener.address.socketAddress.address == "127.0.0.1")
        #expect(listener.address.socketAddress.portValue == 10000)
        let filter = try #require(listener.filterChains.first?.filters.first)
        #expect(filter.name == "envoy.filters.network.http_connection_manager")
        let hcm = try Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig)
        guard case .rds(let rds)? = hcm.routeSpecifier else {
            Issue.record("no RDS")
            return
        }
        #expect(rds.routeConfigName == "gateway")
        #expect(rds.configSource.ads == Envoy_Config_Core_V3_AggregatedConfigSource())
        #expect(rds.configSource.resourceApiVersion == .v3)
        #expect(hcm.httpFilters.map(\.name) == ["sluice", "envoy.filters.http.router"])
        guard case .configDiscovery(let discovery)? = hcm.httpFilters[0].configType else {
            Issue.record("the sluice filter is not ECDS-discovered")
            return
        }
        #expect(discovery.typeUrls == ["type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"])
        #expect(discovery.configSource.ads == Envoy_Config_Core_V3_AggregatedConfigSource())
        #expect(hcm.accessLog.map(\.name) == ["envoy.access_loggers.stdout"])
    }

    @Test func ecdsResourceWrapsTheModuleFilterWithTheJSONConfig() throws {
        let config = try decode(Envoy_Config_Core_V3_TypedExtensionConfig.self, .extensionConfig, "sluice")
        #expect(config.name == "sluice")
        let filter = try Envoy_Extensions_Filters_Http_DynamicModules_V3_DynamicModuleFilter(unpackingAny: config.typedConfig)
        #expect(filter.filterName == "sluice")
        #expect(filter.dynamicModuleConfig.name == "sluice")
        #expect(filter.dynamicModuleConfig.doNotClose)
        #expect(filter.dynamicModuleConfig.metricsNamespace == "sluice")
        let json = try Google_Protobuf_StringValue(unpackingAny: filter.filterConfig)
        #expect(Array(json.value.utf8) == TestPlans.gatewayConfig())
    }

    @Test func routesMatchTheRouteHeaderInOrder() throws {
        let routes = try decode(Envoy_Config_Route_V3_RouteConfiguration.self, .route, "gateway")
        let host = try #require(routes.virtualHosts.first)
        #expect(host.domains == ["*"])
        #expect(host.routes.map(\.route.cluster) == ["openai", "azure", "failover", "openai"])
        #expect(host.routes.map { $0.match.headers.first?.stringMatch.exact } == ["openai", "azure", "failover", nil])
        #expect(host.routes.allSatisfy { $0.match.prefix == "/" && $0.route.timeout.seconds == 300 })
        let retry = host.routes[2].route.retryPolicy
        #expect(retry.numRetries.value == 2)
        #expect(retry.retriableStatusCodes == [429])
        #expect(retry.retryPriority.name == "envoy.retry_priorities.previous_priorities")
        let previous = try Envoy_Extensions_Retry_Priority_PreviousPriorities_V3_PreviousPrioritiesConfig(
            unpackingAny: retry.retryPriority.typedConfig)
        #expect(previous.updateFrequency == 1)
    }

    @Test func clustersAreEDSStrictDNSOrAggregate() throws {
        let openai = try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "openai")
        #expect(openai.type == .eds)
        #expect(openai.edsClusterConfig.edsConfig.ads == Envoy_Config_Core_V3_AggregatedConfigSource())
        #expect(openai.connectTimeout.seconds == 2)
        let azure = try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "azure")
        #expect(azure.type == .strictDns)
        #expect(azure.loadAssignment.endpoints.first?.lbEndpoints.first?.endpoint.address.socketAddress.address == "localhost")
        #expect(azure.transportSocket.name == "envoy.transport_sockets.tls")
        let tls = try Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext(unpackingAny: azure.transportSocket.typedConfig)
        #expect(tls.sni == "example.openai.azure.com")
        #expect(tls.commonTlsContext.validationContext.trustedCa.filename == "/etc/ssl/certs/ca-certificates.crt")
        let failover = try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "failover")
        #expect(failover.clusterType.name == "envoy.clusters.aggregate")
        #expect(failover.lbPolicy == .clusterProvided)
        let members = try Envoy_Extensions_Clusters_Aggregate_V3_ClusterConfig(unpackingAny: failover.clusterType.typedConfig)
        #expect(members.clusters == ["failover-openai", "failover-azure"])
        #expect(try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "failover-openai").typedExtensionProtocolOptions.isEmpty)
    }

    @Test func upstreamFilterChainSubscribesToSecretsOverADS() throws {
        let openai = try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "openai")
        let any = try #require(openai.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"])
        let options = try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(unpackingAny: any)
        #expect(options.explicitHTTPConfig.httpProtocolOptions == Envoy_Config_Core_V3_Http1ProtocolOptions())
        #expect(options.httpFilters.map(\.name) == ["envoy.filters.http.dynamic_modules", "envoy.filters.http.upstream_codec"])
        let filter = try Envoy_Extensions_Filters_Http_DynamicModules_V3_DynamicModuleFilter(unpackingAny: options.httpFilters[0].typedConfig)
        #expect(filter.filterName == "sluice_upstream")
        let json = try Google_Protobuf_StringValue(unpackingAny: filter.filterConfig).value
        #expect(json == #"{"backend":"openai","schema":"openai","credential":{"secret":"openai-key","sds":"ads"}}"#)
        // The module reads it: the credential is an ADS secret.
        let parsed = try UpstreamConfig.parse(Array(json.utf8))
        #expect(parsed.backends.first?.credential == .secret(name: "openai-key", sds: .ads))

        let failover = try decode(Envoy_Config_Cluster_V3_Cluster.self, .cluster, "failover")
        let failoverOptions = try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(
            unpackingAny: try #require(failover.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]))
        let failoverFilter = try Envoy_Extensions_Filters_Http_DynamicModules_V3_DynamicModuleFilter(
            unpackingAny: failoverOptions.httpFilters[0].typedConfig)
        let failoverJSON = try Google_Protobuf_StringValue(unpackingAny: failoverFilter.filterConfig).value
        #expect(failoverJSON.components(separatedBy: #""sds":"ads""#).count == 3)
    }

    @Test func externalSecretsAreLeftAlone() throws {
        let external = Array(#"{"backend":"x","schema":"openai","credential":{"secret":"theirs","sds_path":"/etc/sds/theirs.yaml"}}"#.utf8)
        let plan = EnvoyPlan(
            clusters: [ClusterPlan(name: "x", kind: .endpoints([EndpointPlan(host: "10.0.0.1", port: 80)]), upstreamFilterConfig: external)])
        let cluster = try Envoy_Config_Cluster_V3_Cluster(unpackingAny: try #require(ResourceEncoder.encode(plan)[.cluster].first).resource)
        let options = try Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions(
            unpackingAny: try #require(cluster.typedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]))
        let filter = try Envoy_Extensions_Filters_Http_DynamicModules_V3_DynamicModuleFilter(unpackingAny: options.httpFilters[0].typedConfig)
        #expect(Array(try Google_Protobuf_StringValue(unpackingAny: filter.filterConfig).value.utf8) == external)
        #expect(try StaticBootstrap.render(plan: plan, format: .json).contains(#"\"sds_path\":\"/etc/sds/theirs.yaml\""#))
    }

    @Test func endpointsCarryPriorityAndBackendMetadata() throws {
        let assignment = try decode(Envoy_Config_Endpoint_V3_ClusterLoadAssignment.self, .endpoint, "failover-openai")
        #expect(assignment.clusterName == "failover-openai")
        let endpoint = try #require(assignment.endpoints.first?.lbEndpoints.first)
        #expect(endpoint.endpoint.address.socketAddress.portValue == 18101)
        #expect(endpoint.metadata.filterMetadata["sluice"]?.fields["backend"]?.stringValue == "openai")
        let plan = EnvoyPlan(
            clusters: [
                ClusterPlan(
                    name: "pool",
                    kind: .endpoints([
                        EndpointPlan(host: "10.0.0.2", port: 80, priority: 1), EndpointPlan(host: "10.0.0.1", port: 80, priority: 0),
                    ]))
            ])
        let pool = try Envoy_Config_Endpoint_V3_ClusterLoadAssignment(unpackingAny: try #require(ResourceEncoder.encode(plan)[.endpoint].first).resource)
        #expect(pool.endpoints.map(\.priority) == [0, 1])
        #expect(pool.endpoints.map { $0.lbEndpoints[0].endpoint.address.socketAddress.address } == ["10.0.0.1", "10.0.0.2"])
    }

    @Test func secretsAreGenericSecretsWithTheValueRead() throws {
        let secret = try decode(Envoy_Extensions_TransportSockets_Tls_V3_Secret.self, .secret, "openai-key")
        #expect(secret.genericSecret.secret.inlineString == "sk-sim-openai")

        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-xds-secret-\(UUID().uuidString)")
        try Data("from-file\n".utf8).write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        #expect(try SecretReader.live.read(SecretPlan(name: "f", source: .file(file.path))) == "from-file")
        #expect(try SecretReader.live.read(SecretPlan(name: "p", source: .environment("PATH"))) == ProcessInfo.processInfo.environment["PATH"])
        #expect(throws: XDSEncodingError.secretUnavailable(name: "e", reason: "environment variable SLUICE_XDS_TEST_UNSET is not set")) {
            try SecretReader.live.read(SecretPlan(name: "e", source: .environment("SLUICE_XDS_TEST_UNSET")))
        }
        #expect(throws: XDSEncodingError.secretUnavailable(name: "m", reason: "cannot read file /nonexistent/sluice")) {
            try SecretReader.live.read(SecretPlan(name: "m", source: .file("/nonexistent/sluice")))
        }
    }

    @Test func inconsistentPlansAreRefused() {
        var plan = TestPlans.demo()
        plan.listeners[0].routes.append(RoutePlan(routeName: "ghost", cluster: "ghost"))
        #expect(throws: XDSEncodingError.inconsistentPlan(["listener 'gateway': route to unknown cluster 'ghost'"])) {
            try ResourceEncoder.encode(plan)
        }
    }

    @Test func encodingIsDeterministicAndTheSnapshotConsistent() throws {
        #expect(try ResourceEncoder.encode(TestPlans.demo()) == resources)
        let snapshot = XDSSnapshot(version: "1", resources: resources)
        #expect(snapshot.consistencyProblems() == [])
        var broken = resources
        broken[.endpoint] = []
        broken[.extensionConfig] = []
        #expect(
            XDSSnapshot(version: "1", resources: broken).consistencyProblems() == [
                "listener 'gateway' discovers filter config 'sluice', which is not in the snapshot",
                "EDS cluster 'openai' has no endpoints 'openai' in the snapshot",
                "EDS cluster 'failover-openai' has no endpoints 'failover-openai' in the snapshot",
                "EDS cluster 'failover-azure' has no endpoints 'failover-azure' in the snapshot",
            ])
    }

    @Test func unchangedTypesKeepTheirVersions() throws {
        let first = XDSSnapshot(version: "1", resources: resources)
        let keysOnly = try ResourceEncoder.encode(TestPlans.demo(keys: ["sk-sluice-demo", "sk-new"]))
        let second = XDSSnapshot(version: "2", resources: keysOnly, previous: first)
        #expect(second[.extensionConfig].version == "2")
        for type in XDSType.allCases where type != .extensionConfig {
            #expect(second[type].version == "1", "\(type.shortName)")
        }
        let rotated = try ResourceEncoder.encode(TestPlans.demo(keys: ["sk-sluice-demo", "sk-new"], openaiKey: "rotated"))
        let third = XDSSnapshot(version: "3", resources: rotated, previous: second)
        #expect(XDSType.allCases.filter { third[$0].version == "3" } == [.secret])
    }

    @Test func staticBootstrapInlinesEverything() throws {
        let json = try StaticBootstrap.render(plan: TestPlans.demo(), node: .init(id: "n1", cluster: "c1"), admin: .init(port: 9902), format: .json)
        let value = try JSONParser.parse(Array(json.utf8))
        #expect(value["node"]?["id"]?.stringValue == "n1")
        #expect(value["admin"]?["address"]?["socket_address"]?["port_value"]?.int64Value == 9902)
        let resources = try #require(value["static_resources"])
        #expect(resources["secrets"]?.arrayValue?.count == 2)
        #expect(resources["secrets"]?[0]?["generic_secret"]?["secret"]?["inline_string"]?.stringValue == "sk-sim-openai")
        let clusters = try #require(resources["clusters"]?.arrayValue)
        #expect(clusters.map { $0["name"]?.stringValue } == ["openai", "azure", "failover-openai", "failover-azure", "failover"])
        #expect(clusters[0]["type"]?.stringValue == "STATIC")
        #expect(clusters[0]["load_assignment"]?["endpoints"]?[0]?["lb_endpoints"]?.arrayValue?.count == 1)
        // Bootstrap secrets: the credentials stay plain.
        #expect(json.contains(#"{\"secret\":\"openai-key\"}"#))
        #expect(!json.contains("sds"))
        let hcm = try #require(resources["listeners"]?[0]?["filter_chains"]?[0]?["filters"]?[0]?["typed_config"])
        #expect(hcm["route_config"]?["virtual_hosts"]?[0]?["routes"]?.arrayValue?.count == 4)
        let gateway = try #require(hcm["http_filters"]?[0])
        #expect(gateway["name"]?.stringValue == "envoy.filters.http.dynamic_modules")
        #expect(gateway["typed_config"]?["filter_config"]?["@type"]?.stringValue == "type.googleapis.com/google.protobuf.StringValue")
        #expect(gateway["typed_config"]?["filter_config"]?["value"]?.stringValue.map { Array($0.utf8) } == TestPlans.gatewayConfig())
    }
}

@Suite struct RenderYAMLTests {
    @Test func yamlIsBlockStyleWithQuotedStrings() throws {
        let yaml = try StaticBootstrap.render(plan: TestPlans.demo(), node: .init(id: "n1", cluster: "c1"))
        #expect(yaml.hasPrefix("# Envoy bootstrap rendered by sluiced"))
        #expect(yaml.contains("\nnode:\n  id: \"n1\"\n  cluster: \"c1\"\n"))
        #expect(yaml.contains("\n  secrets:\n  - name: \"openai-key\"\n    generic_secret:\n      secret:\n        inline_string: \"sk-sim-openai\"\n"))
        #expect(yaml.contains("\"@type\": \"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager\""))
        #expect(yaml.contains("port_value: 10000\n"))
        #expect(yaml.contains("retriable_status_codes:\n"))
        #expect(yaml.contains("- 429\n"))
        #expect(yaml.contains("http_protocol_options: {}\n"))
    }

    @Test func yamlWriterHandlesNestingAndEmptyValues() throws {
        let value = try JSONParser.parse(#"{"a":[{"b":1,"c":[true,null]},[],{}],"d":{},"e":"x\"y","@k":[[1,2]]}"#)
        var out = ""
        YAMLWriter.write(value, indent: 0, into: &out)
        #expect(
            out == """
                a:
                - b: 1
                  c:
                  - true
                  - null
                - []
                - {}
                d: {}
                e: "x\\"y"
                "@k":
                -
                  - 1
                  - 2

                """)
    }
}

extension JSONValue {
    fileprivate subscript(index: Int) -> JSONValue? {
        guard let array = arrayValue, array.indices.contains(index) else { return nil }
        return array[index]
    }
}
