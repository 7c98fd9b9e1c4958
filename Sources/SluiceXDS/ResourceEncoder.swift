// `EnvoyPlan` -> Envoy resources. One encoder serves both outputs:
//
// - `.ads` (sluiced's xDS): listeners whose HCM takes its routes over RDS and the `sluice`
//   filter's config over ECDS (`config_discovery`, resource `EnvoyPlan.gatewayFilterConfigName`),
//   clusters whose IP endpoints come over EDS (DNS names stay STRICT_DNS, EDS carries only IPs),
//   and the provider credentials as SDS generic secrets that the upstream filters subscribe to
//   over ADS (the compiled upstream configs name them `{"secret": name, "sds": "ads"}`).
// - `.inline` (`sluiced render`'s static bootstrap): the same listeners with the route table and
//   the filter config inline, STATIC clusters with their endpoints, secrets in
//   `static_resources.secrets` (each `{"secret": name, "sds": "ads"}` credential becomes
//   `{"secret": name}`, a bootstrap secret).

import Foundation
public import SluiceControl
import SluiceCore
import SluiceXDSProto
public import SwiftProtobuf

/// Why a plan could not be encoded.
public enum XDSEncodingError: Error, Equatable, CustomStringConvertible {
    /// The plan names something it does not define (`EnvoyPlan.validate()`'s problems).
    case inconsistentPlan([String])
    /// A secret's value could not be read from its source.
    case secretUnavailable(name: String, reason: String)
    /// A filter config is not the JSON object the module reads.
    case invalidFilterConfig(owner: String, reason: String)

    public var description: String {
        switch self {
        case .inconsistentPlan(let problems): "inconsistent plan: " + problems.joined(separator: "; ")
        case .secretUnavailable(let name, let reason): "secret '\(name)': \(reason)"
        case .invalidFilterConfig(let owner, let reason): "filter config of \(owner): \(reason)"
        }
    }
}

/// Reads the value of a secret from where the plan says it is (file, environment, literal).
public struct SecretReader: Sendable {
    public var read: @Sendable (SecretPlan) throws(XDSEncodingError) -> String

    public init(read: @escaping @Sendable (SecretPlan) throws(XDSEncodingError) -> String) {
        self.read = read
    }

    /// Files (trailing newline trimmed) and environment variables of this process; literals as is.
    public static let live = SecretReader { secret throws(XDSEncodingError) in
        switch secret.source {
        case .literal(let value):
            return value
        case .environment(let variable):
            guard let value = ProcessInfo.processInfo.environment[variable] else {
                throw .secretUnavailable(name: secret.name, reason: "environment variable \(variable) is not set")
            }
            return value
        case .file(let path):
            guard let data = FileManager.default.contents(atPath: path) else {
                throw .secretUnavailable(name: secret.name, reason: "cannot read file \(path)")
            }
            var value = String(decoding: data, as: UTF8.self)
            while value.hasSuffix("\n") || value.hasSuffix("\r") { value.removeLast() }
            return value
        }
    }
}

/// One named resource, encoded.
public struct XDSResource: Sendable, Equatable {
    public var name: String
    /// The resource as an `Any` (type URL + serialized message).
    public var resource: XDSAny

    public init(name: String, resource: XDSAny) {
        self.name = name
        self.resource = resource
    }
}

/// The resources of a plan, by type, in the plan's order.
public struct XDSResources: Sendable, Equatable {
    public var byType: [XDSType: [XDSResource]]

    public init(byType: [XDSType: [XDSResource]] = [:]) {
        self.byType = byType
    }

    public subscript(type: XDSType) -> [XDSResource] {
        get { byType[type] ?? [] }
        set { byType[type] = newValue }
    }

    /// The names of the resources of one type.
    public func names(_ type: XDSType) -> [String] { self[type].map(\.name) }
}

/// Encodes an `EnvoyPlan` as xDS resources for sluiced's ADS server.
public enum ResourceEncoder {
    /// The plan's resources for ADS: LDS, RDS, CDS, EDS, SDS and ECDS.
    public static func encode(_ plan: EnvoyPlan, secrets: SecretReader = .live) throws(XDSEncodingError) -> XDSResources {
        let problems = plan.validate()
        guard problems.isEmpty else { throw .inconsistentPlan(problems) }
        let encoder = PlanEncoder(plan: plan, mode: .ads)
        var resources = XDSResources()
        do {
            for listener in plan.listeners {
                resources[.listener].append(XDSResource(name: listener.name, resource: try binaryAny(try encoder.listener(listener))))
                resources[.route].append(
                    XDSResource(name: PlanEncoder.routeConfigName(listener), resource: try binaryAny(encoder.routeConfiguration(listener))))
            }
            for cluster in plan.clusters {
                resources[.cluster].append(XDSResource(name: cluster.name, resource: try binaryAny(try encoder.cluster(cluster))))
                if encoder.usesEDS(cluster) {
                    resources[.endpoint].append(XDSResource(name: cluster.name, resource: try binaryAny(encoder.loadAssignment(cluster))))
                }
            }
            resources[.secret] = try encodeSecrets(plan, secrets: secrets)
            resources[.extensionConfig] = [
                XDSResource(name: EnvoyPlan.gatewayFilterConfigName, resource: try binaryAny(try encoder.gatewayFilterExtensionConfig()))
            ]
        } catch let error as XDSEncodingError {
            throw error
        } catch {
            throw .invalidFilterConfig(owner: "plan", reason: "\(error)")
        }
        return resources
    }

    /// The plan's SDS resources alone, with the secrets read now (to follow rotated files).
    public static func encodeSecrets(_ plan: EnvoyPlan, secrets: SecretReader = .live) throws(XDSEncodingError) -> [XDSResource] {
        var resources: [XDSResource] = []
        for secret in plan.secrets {
            let value = try secrets.read(secret)
            do {
                resources.append(XDSResource(name: secret.name, resource: try binaryAny(PlanEncoder.secret(secret, value: value))))
            } catch {
                throw .secretUnavailable(name: secret.name, reason: "cannot encode: \(error)")
            }
        }
        return resources
    }

    /// An `Any` holding `message` serialized (deterministically: equal plans give equal bytes).
    static func binaryAny(_ message: some SwiftProtobuf.Message) throws -> XDSAny {
        var options = BinaryEncodingOptions()
        options.useDeterministicOrdering = true
        var any = XDSAny()
        any.typeURL = "type.googleapis.com/" + type(of: message).protoMessageName
        any.value = try message.serializedBytes(options: options)
        return any
    }
}

/// Builds the Envoy messages of a plan.
struct PlanEncoder {
    enum Mode {
        /// Routes over RDS, filter config over ECDS, IP endpoints over EDS, secrets over SDS (ADS).
        case ads
        /// Everything inline (a static bootstrap).
        case inline
    }

    let plan: EnvoyPlan
    let mode: Mode

    static var adsConfigSource: ConfigSource {
        var source = ConfigSource()
        source.ads = Envoy_Config_Core_V3_AggregatedConfigSource()
        source.resourceApiVersion = .v3
        return source
    }

    /// The RDS resource name of a listener's route table.
    static func routeConfigName(_ listener: ListenerPlan) -> String { listener.name }

    // MARK: - Listeners and routes

    func listener(_ plan: ListenerPlan) throws -> Listener {
        var hcm = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager()
        hcm.statPrefix = plan.name
        switch mode {
        case .ads:
            var rds = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_Rds()
            rds.configSource = Self.adsConfigSource
            rds.routeConfigName = Self.routeConfigName(plan)
            hcm.rds = rds
        case .inline:
            hcm.routeConfig = routeConfiguration(plan)
        }
        if plan.accessLog {
            var format = Envoy_Config_Core_V3_SubstitutionFormatString()
            var text = Envoy_Config_Core_V3_DataSource()
            text.inlineString = AccessLog.format
            format.textFormatSource = text
            var stdout = Envoy_Extensions_AccessLoggers_Stream_V3_StdoutAccessLog()
            stdout.logFormat = format
            var log = Envoy_Config_Accesslog_V3_AccessLog()
            log.name = EnvoyNames.stdoutAccessLog
            log.typedConfig = try XDSAny(message: stdout)
            hcm.accessLog = [log]
        }
        hcm.httpFilters = [try gatewayHTTPFilter(), try Self.typedFilter(EnvoyNames.router, Envoy_Extensions_Filters_Http_Router_V3_Router())]

        var filter = Envoy_Config_Listener_V3_Filter()
        filter.name = EnvoyNames.httpConnectionManager
        filter.typedConfig = try XDSAny(message: hcm)
        var chain = Envoy_Config_Listener_V3_FilterChain()
        chain.filters = [filter]
        if let tls = plan.tls {
            var certificate = Envoy_Extensions_TransportSockets_Tls_V3_TlsCertificate()
            certificate.certificateChain.filename = tls.certificateChainPath
            certificate.privateKey.filename = tls.privateKeyPath
            var context = Envoy_Extensions_TransportSockets_Tls_V3_DownstreamTlsContext()
            context.commonTlsContext.tlsCertificates = [certificate]
            var socket = Envoy_Config_Core_V3_TransportSocket()
            socket.name = EnvoyNames.tlsTransportSocket
            socket.typedConfig = try XDSAny(message: context)
            chain.transportSocket = socket
        }
        var listener = Listener()
        listener.name = plan.name
        listener.address = Self.address(plan.address, plan.port)
        listener.filterChains = [chain]
        return listener
    }

    func routeConfiguration(_ plan: ListenerPlan) -> RouteConfiguration {
        var host = Envoy_Config_Route_V3_VirtualHost()
        host.name = plan.name
        host.domains = ["*"]
        host.routes = plan.routes.map { route in
            var match = Envoy_Config_Route_V3_RouteMatch()
            match.prefix = "/"
            if let name = route.routeName {
                var header = Envoy_Config_Route_V3_HeaderMatcher()
                header.name = EnvoyNames.routeHeader
                var exact = Envoy_Type_Matcher_V3_StringMatcher()
                exact.exact = name
                header.stringMatch = exact
                match.headers = [header]
            }
            var action = Envoy_Config_Route_V3_RouteAction()
            action.cluster = route.cluster
            action.timeout = Google_Protobuf_Duration(seconds: Int64(route.timeoutSeconds), nanos: 0)
            if let retry = route.retry {
                var policy = Envoy_Config_Route_V3_RetryPolicy()
                policy.retryOn = retry.retryOn
                policy.retriableStatusCodes = retry.retriableStatusCodes.map { UInt32(clamping: $0) }
                policy.numRetries = Google_Protobuf_UInt32Value(UInt32(clamping: retry.numRetries))
                if retry.nextPriorityOnRetry {
                    var config = Envoy_Extensions_Retry_Priority_PreviousPriorities_V3_PreviousPrioritiesConfig()
                    config.updateFrequency = 1
                    var priority = Envoy_Config_Route_V3_RetryPolicy.RetryPriority()
                    priority.name = EnvoyNames.previousPriorities
                    priority.typedConfig = (try? XDSAny(message: config)) ?? XDSAny()
                    policy.retryPriority = priority
                }
                action.retryPolicy = policy
            }
            var entry = Envoy_Config_Route_V3_Route()
            entry.match = match
            entry.route = action
            return entry
        }
        var config = RouteConfiguration()
        config.name = Self.routeConfigName(plan)
        config.virtualHosts = [host]
        return config
    }

    // MARK: - The module's filters

    static func moduleConfig() -> Envoy_Extensions_DynamicModules_V3_DynamicModuleConfig {
        var module = Envoy_Extensions_DynamicModules_V3_DynamicModuleConfig()
        module.name = EnvoyPlan.moduleName
        module.doNotClose = true  // the Swift runtime must never be unloaded
        module.metricsNamespace = EnvoyPlan.metricsNamespace
        return module
    }

    static func dynamicModuleFilter(filterName: String, json: [UInt8]) throws -> DynamicModuleFilter {
        var filter = DynamicModuleFilter()
        filter.dynamicModuleConfig = moduleConfig()
        filter.filterName = filterName
        // A StringValue reaches the module as is (a Struct would be re-serialised by Envoy).
        filter.filterConfig = try XDSAny(message: Google_Protobuf_StringValue(String(decoding: json, as: UTF8.self)))
        return filter
    }

    /// The `sluice` filter: ECDS-discovered (`.ads`) or inline (`.inline`).
    func gatewayHTTPFilter() throws -> HttpFilter {
        switch mode {
        case .ads:
            var discovery = Envoy_Config_Core_V3_ExtensionConfigSource()
            discovery.configSource = Self.adsConfigSource
            discovery.typeUrls = [EnvoyNames.dynamicModuleFilterTypeURL]
            var filter = HttpFilter()
            filter.name = EnvoyPlan.gatewayFilterConfigName  // the ECDS resource name
            filter.configDiscovery = discovery
            return filter
        case .inline:
            return try Self.typedFilter(EnvoyNames.dynamicModulesFilter, gatewayFilter())
        }
    }

    func gatewayFilter() throws -> DynamicModuleFilter {
        try Self.dynamicModuleFilter(filterName: "sluice", json: plan.gatewayFilterConfig)
    }

    /// The ECDS resource: the whole `DynamicModuleFilter`, named like the HTTP filter.
    func gatewayFilterExtensionConfig() throws -> TypedExtensionConfig {
        var config = TypedExtensionConfig()
        config.name = EnvoyPlan.gatewayFilterConfigName
        config.typedConfig = try XDSAny(message: gatewayFilter())
        return config
    }

    static func typedFilter(_ name: String, _ message: some SwiftProtobuf.Message) throws -> HttpFilter {
        var filter = HttpFilter()
        filter.name = name
        filter.typedConfig = try XDSAny(message: message)
        return filter
    }

    // MARK: - Clusters and endpoints

    /// Whether the cluster's endpoints travel over EDS (IP endpoints, ADS mode).
    func usesEDS(_ cluster: ClusterPlan) -> Bool {
        guard mode == .ads, case .endpoints = cluster.kind else { return false }
        return !cluster.usesDNS
    }

    func cluster(_ plan: ClusterPlan) throws -> Cluster {
        var cluster = Cluster()
        cluster.name = plan.name
        cluster.connectTimeout = Google_Protobuf_Duration(
            seconds: Int64(plan.connectTimeoutMillis / 1000), nanos: Int32((plan.connectTimeoutMillis % 1000) * 1_000_000))
        switch plan.kind {
        case .endpoints:
            if plan.usesDNS {
                cluster.type = .strictDns
                cluster.dnsLookupFamily = .v4Preferred
                cluster.loadAssignment = loadAssignment(plan)
            } else if mode == .ads {
                cluster.type = .eds
                var eds = Cluster.EdsClusterConfig()
                eds.edsConfig = Self.adsConfigSource
                cluster.edsClusterConfig = eds
            } else {
                cluster.type = .static
                cluster.loadAssignment = loadAssignment(plan)
            }
        case .aggregate(let members):
            var aggregate = Envoy_Extensions_Clusters_Aggregate_V3_ClusterConfig()
            aggregate.clusters = members
            var custom = Cluster.CustomClusterType()
            custom.name = EnvoyNames.aggregateCluster
            custom.typedConfig = try XDSAny(message: aggregate)
            cluster.clusterType = custom
            cluster.lbPolicy = .clusterProvided
        case .originalDestination:
            cluster.type = .originalDst
            cluster.lbPolicy = .clusterProvided
            var original = Cluster.OriginalDstLbConfig()
            original.useHTTPHeader = true
            cluster.originalDstLbConfig = original
        }
        if case .endpoints = plan.kind {
            switch plan.loadBalancer {
            case .roundRobin:
                break
            case .leastRequest:
                cluster.lbPolicy = .leastRequest
            case .module(let policy, let json):
                var config = Envoy_Extensions_LoadBalancingPolicies_DynamicModules_V3_DynamicModulesLoadBalancerConfig()
                config.dynamicModuleConfig = Self.moduleConfig()
                config.lbPolicyName = policy
                // A StringValue reaches the module as is, like the filters' configs.
                config.lbPolicyConfig = try XDSAny(message: Google_Protobuf_StringValue(String(decoding: json, as: UTF8.self)))
                var extensionConfig = Envoy_Config_Core_V3_TypedExtensionConfig()
                extensionConfig.name = EnvoyNames.dynamicModulesLoadBalancer
                extensionConfig.typedConfig = try XDSAny(message: config)
                var entry = Envoy_Config_Cluster_V3_LoadBalancingPolicy.Policy()
                entry.typedExtensionConfig = extensionConfig
                var policies = Envoy_Config_Cluster_V3_LoadBalancingPolicy()
                policies.policies = [entry]
                cluster.loadBalancingPolicy = policies
            }
        }
        if let tls = plan.upstreamTLS {
            var context = Envoy_Extensions_TransportSockets_Tls_V3_UpstreamTlsContext()
            context.sni = tls.sni
            if tls.verify {
                var validation = Envoy_Extensions_TransportSockets_Tls_V3_CertificateValidationContext()
                validation.trustedCa.filename = EnvoyNames.systemTrustStore
                context.commonTlsContext.validationContext = validation
            }
            var socket = Envoy_Config_Core_V3_TransportSocket()
            socket.name = EnvoyNames.tlsTransportSocket
            socket.typedConfig = try XDSAny(message: context)
            cluster.transportSocket = socket
        }
        if plan.upstreamFilterConfig != nil || plan.http2 {
            var options = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions()
            var explicit = Envoy_Extensions_Upstreams_Http_V3_HttpProtocolOptions.ExplicitHttpConfig()
            if plan.http2 {
                explicit.http2ProtocolOptions = Envoy_Config_Core_V3_Http2ProtocolOptions()
            } else {
                explicit.httpProtocolOptions = Envoy_Config_Core_V3_Http1ProtocolOptions()
            }
            options.explicitHTTPConfig = explicit
            if let json = plan.upstreamFilterConfig {
                let config = mode == .inline ? try Self.withBootstrapCredentials(json, owner: "cluster '\(plan.name)'") : json
                options.httpFilters = [
                    try Self.typedFilter(
                        EnvoyNames.dynamicModulesFilter, Self.dynamicModuleFilter(filterName: EnvoyNames.upstreamFilterName, json: config)),
                    try Self.typedFilter(EnvoyNames.upstreamCodec, Envoy_Extensions_Filters_Http_UpstreamCodec_V3_UpstreamCodec()),
                ]
            }
            cluster.typedExtensionProtocolOptions[EnvoyNames.httpProtocolOptions] = try XDSAny(message: options)
        }
        return cluster
    }

    func loadAssignment(_ plan: ClusterPlan) -> ClusterLoadAssignment {
        var assignment = ClusterLoadAssignment()
        assignment.clusterName = plan.name
        guard case .endpoints(let endpoints) = plan.kind else { return assignment }
        let priorities = Set(endpoints.map(\.priority)).sorted()
        assignment.endpoints = priorities.map { priority in
            var group = Envoy_Config_Endpoint_V3_LocalityLbEndpoints()
            group.priority = UInt32(clamping: priority)
            group.lbEndpoints = endpoints.filter { $0.priority == priority }.map { endpoint in
                var lb = Envoy_Config_Endpoint_V3_LbEndpoint()
                var target = Envoy_Config_Endpoint_V3_Endpoint()
                target.address = Self.address(endpoint.host, endpoint.port)
                lb.endpoint = target
                if let backend = endpoint.backend {
                    var metadata = Envoy_Config_Core_V3_Metadata()
                    metadata.filterMetadata["sluice"] = Google_Protobuf_Struct(fields: ["backend": Google_Protobuf_Value(stringValue: backend)])
                    lb.metadata = metadata
                }
                return lb
            }
            return group
        }
        return assignment
    }

    static func address(_ host: String, _ port: Int) -> Envoy_Config_Core_V3_Address {
        var socket = Envoy_Config_Core_V3_SocketAddress()
        socket.address = host
        socket.portValue = UInt32(clamping: port)
        var address = Envoy_Config_Core_V3_Address()
        address.socketAddress = socket
        return address
    }

    // MARK: - Secrets

    static func secret(_ plan: SecretPlan, value: String) -> Secret {
        var secret = Secret()
        secret.name = plan.name
        var generic = Envoy_Extensions_TransportSockets_Tls_V3_GenericSecret()
        generic.secret.inlineString = value
        secret.genericSecret = generic
        return secret
    }

    /// `json` (an upstream filter config) with every credential served over ADS
    /// (`{"secret": name, "sds": "ads"}`) turned into a bootstrap secret (`{"secret": name}`):
    /// a static bootstrap carries the secrets in `static_resources.secrets`.
    static func withBootstrapCredentials(_ json: [UInt8], owner: String) throws(XDSEncodingError) -> [UInt8] {
        let value: JSONValue
        do {
            value = try JSONParser.parse(json)
        } catch {
            throw .invalidFilterConfig(owner: owner, reason: "\(error)")
        }
        guard case .object = value else { throw .invalidFilterConfig(owner: owner, reason: "not a JSON object") }
        var writer = JSONWriter()
        writer.value(bootstrapCredentials(value))
        return writer.bytes
    }

    private static func bootstrapCredentials(_ value: JSONValue) -> JSONValue {
        switch value {
        case .array(let items):
            return .array(items.map(bootstrapCredentials))
        case .object(let object):
            let isADSSecret = object["secret"]?.stringValue != nil && object["sds"]?.stringValue == "ads"
            let members = object.members.compactMap { member -> JSONObject.Member? in
                if isADSSecret && member.key == "sds" { return nil }
                return (key: member.key, value: bootstrapCredentials(member.value))
            }
            return .object(JSONObject(members))
        default:
            return value
        }
    }
}
