// xDS for sluiced: an `EnvoyPlan` encoded as Envoy resources (ADS snapshots, `ResourceEncoder`;
// a static bootstrap for `sluiced render`, `StaticBootstrap`), and the ADS server that serves
// them the way go-control-plane does (`ADSServer`, `SnapshotCache`, `ADSStreamState`).

public import SluiceXDSProto
public import SwiftProtobuf

/// The xDS resource types sluiced serves, by their type URL.
public enum XDSType: String, Sendable, CaseIterable, Hashable, Comparable {
    case cluster = "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    case endpoint = "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"
    case listener = "type.googleapis.com/envoy.config.listener.v3.Listener"
    case route = "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    case secret = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"
    /// ECDS: the `sluice` filter's config (`TypedExtensionConfig` wrapping a `DynamicModuleFilter`).
    case extensionConfig = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"

    public var typeURL: String { rawValue }

    /// Make-before-break push order (go-control-plane's ADS order): clusters before the endpoints
    /// they load, before the listeners and routes that use them; secrets before the filter config
    /// (the last thing to change, so a new model is routed only once its route and cluster exist).
    public static let pushOrder: [XDSType] = [.cluster, .endpoint, .listener, .route, .secret, .extensionConfig]

    /// LDS and CDS are wildcard (an empty subscription means "all"); the others are requested by name.
    public var isWildcardByDefault: Bool { self == .listener || self == .cluster }

    /// A short name for logs and the admin API: `CDS`, `EDS`, `LDS`, `RDS`, `SDS`, `ECDS`.
    public var shortName: String {
        switch self {
        case .cluster: "CDS"
        case .endpoint: "EDS"
        case .listener: "LDS"
        case .route: "RDS"
        case .secret: "SDS"
        case .extensionConfig: "ECDS"
        }
    }

    public static func < (lhs: XDSType, rhs: XDSType) -> Bool {
        pushOrder.firstIndex(of: lhs)! < pushOrder.firstIndex(of: rhs)!
    }
}

/// Envoy's names for the filters, extensions and transport sockets sluiced configures.
enum EnvoyNames {
    static let httpConnectionManager = "envoy.filters.network.http_connection_manager"
    static let dynamicModulesFilter = "envoy.filters.http.dynamic_modules"
    static let router = "envoy.filters.http.router"
    static let upstreamCodec = "envoy.filters.http.upstream_codec"
    static let stdoutAccessLog = "envoy.access_loggers.stdout"
    static let tlsTransportSocket = "envoy.transport_sockets.tls"
    static let aggregateCluster = "envoy.clusters.aggregate"
    static let dynamicModulesLoadBalancer = "envoy.load_balancing_policies.dynamic_modules"
    static let previousPriorities = "envoy.retry_priorities.previous_priorities"
    static let httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    static let upstreamFilterName = "sluice_upstream"
    static let systemTrustStore = "/etc/ssl/certs/ca-certificates.crt"
    static let routeHeader = "x-sluice-route"
    static let dynamicModulesBootstrap = "envoy.bootstrap.dynamic_modules"
    static let dynamicModuleFilterTypeURL =
        "type.googleapis.com/envoy.extensions.filters.http.dynamic_modules.v3.DynamicModuleFilter"
}

// Shorter names for the generated types.
public typealias XDSAny = Google_Protobuf_Any
public typealias DiscoveryRequest = Envoy_Service_Discovery_V3_DiscoveryRequest
public typealias DiscoveryResponse = Envoy_Service_Discovery_V3_DiscoveryResponse
typealias Listener = Envoy_Config_Listener_V3_Listener
typealias RouteConfiguration = Envoy_Config_Route_V3_RouteConfiguration
typealias Cluster = Envoy_Config_Cluster_V3_Cluster
typealias ClusterLoadAssignment = Envoy_Config_Endpoint_V3_ClusterLoadAssignment
typealias Secret = Envoy_Extensions_TransportSockets_Tls_V3_Secret
typealias TypedExtensionConfig = Envoy_Config_Core_V3_TypedExtensionConfig
typealias DynamicModuleFilter = Envoy_Extensions_Filters_Http_DynamicModules_V3_DynamicModuleFilter
typealias HttpFilter = Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpFilter
typealias ConfigSource = Envoy_Config_Core_V3_ConfigSource
