// What a Sluice config compiles to: the Envoy resources of one gateway, in Sluice's own terms.
//
// The config language (`Config/`) compiles a YAML document into an `EnvoyPlan`; two encoders
// turn the same plan into what Envoy reads: xDS resources served over ADS by sluiced (listeners,
// routes, clusters, endpoints, secrets, and the `sluice` filter's config through ECDS), and a
// static bootstrap (`sluiced render`). Keeping the plan free of protobuf and YAML lets both
// encoders, the tests and the benchmarks share one compiled value, and makes "the static config
// and the daemon's config say the same thing" a property of one type.
//
// A plan is internally consistent by construction: every cluster a route names, every cluster an
// aggregate names and every secret a credential names is in it (`EnvoyPlan.validate()` checks).

/// The resources of one gateway.
public struct EnvoyPlan: Sendable, Equatable {
    public var listeners: [ListenerPlan]
    public var clusters: [ClusterPlan]
    public var secrets: [SecretPlan]
    /// The `sluice` HTTP filter's config (the JSON `GatewayConfig.parse` reads), served through
    /// ECDS as the extension config named `gatewayFilterConfigName`, so key, limit and price
    /// edits reach new streams without touching a listener.
    public var gatewayFilterConfig: [UInt8]

    /// The ECDS resource name of the `sluice` filter's config.
    public static let gatewayFilterConfigName = "sluice"
    /// The dynamic module's name (`libsluice.so` on `ENVOY_DYNAMIC_MODULES_SEARCH_PATH`).
    public static let moduleName = "sluice"
    /// The stats prefix of the module's metrics (`sluice.*`).
    public static let metricsNamespace = "sluice"
    /// The module's load-balancing policy for pools with `lb: endpoint_picker`.
    public static let endpointPickerPolicy = "sluice_endpoint_picker"
    /// The ORIGINAL_DST cluster the background worker scrapes the picker pools' `/metrics` through.
    public static let endpointMetricsCluster = "sluice_endpoint_metrics"

    public init(
        listeners: [ListenerPlan] = [], clusters: [ClusterPlan] = [], secrets: [SecretPlan] = [],
        gatewayFilterConfig: [UInt8] = Array("{}".utf8)
    ) {
        self.listeners = listeners
        self.clusters = clusters
        self.secrets = secrets
        self.gatewayFilterConfig = gatewayFilterConfig
    }

    /// The cluster named `name`, if any.
    public func cluster(named name: String) -> ClusterPlan? { clusters.first { $0.name == name } }

    /// The inconsistencies of this plan (empty when every name it uses is defined once).
    public func validate() -> [String] {
        var problems: [String] = []
        var clusterNames = Set<String>()
        for cluster in clusters where !clusterNames.insert(cluster.name).inserted {
            problems.append("cluster '\(cluster.name)' is defined twice")
        }
        var secretNames = Set<String>()
        for secret in secrets where !secretNames.insert(secret.name).inserted {
            problems.append("secret '\(secret.name)' is defined twice")
        }
        var listenerNames = Set<String>()
        for listener in listeners {
            if !listenerNames.insert(listener.name).inserted { problems.append("listener '\(listener.name)' is defined twice") }
            for route in listener.routes where !clusterNames.contains(route.cluster) {
                problems.append("listener '\(listener.name)': route to unknown cluster '\(route.cluster)'")
            }
        }
        for cluster in clusters {
            if case .aggregate(let members) = cluster.kind {
                for member in members where !clusterNames.contains(member) {
                    problems.append("aggregate cluster '\(cluster.name)' names unknown cluster '\(member)'")
                }
            }
            for secret in cluster.secretNames where !secretNames.contains(secret) {
                problems.append("cluster '\(cluster.name)' uses unknown secret '\(secret)'")
            }
        }
        return problems
    }
}

/// One listener: where clients connect, and the route table of its `x-sluice-route` values.
public struct ListenerPlan: Sendable, Equatable {
    public var name: String
    public var address: String
    public var port: Int
    /// Serve TLS with this certificate (nil: plain HTTP).
    public var tls: ListenerTLSPlan?
    /// Routes in match order. A route with a `routeName` matches requests whose `x-sluice-route`
    /// header (set by the `sluice` filter from the body's model) equals it; one without matches
    /// every request (the catch-all, last).
    public var routes: [RoutePlan]
    /// Write one access-log line per request to stdout (consumer, model, backend, tokens, cost).
    public var accessLog: Bool

    public init(name: String, address: String = "127.0.0.1", port: Int, tls: ListenerTLSPlan? = nil, routes: [RoutePlan] = [], accessLog: Bool = true) {
        self.name = name
        self.address = address
        self.port = port
        self.tls = tls
        self.routes = routes
        self.accessLog = accessLog
    }
}

/// A listener's server certificate, as files Envoy reads (and watches).
public struct ListenerTLSPlan: Sendable, Equatable {
    public var certificateChainPath: String
    public var privateKeyPath: String

    public init(certificateChainPath: String, privateKeyPath: String) {
        self.certificateChainPath = certificateChainPath
        self.privateKeyPath = privateKeyPath
    }
}

/// One route: requests routed to `routeName` go to `cluster`.
public struct RoutePlan: Sendable, Equatable {
    /// The `x-sluice-route` value matched; nil for the catch-all.
    public var routeName: String?
    public var cluster: String
    /// Upstream timeout for the whole answer (streams included).
    public var timeoutSeconds: Int
    /// Retries, for ordered fallback across the priorities of an aggregate cluster.
    public var retry: RetryPlan?

    public init(routeName: String?, cluster: String, timeoutSeconds: Int = 300, retry: RetryPlan? = nil) {
        self.routeName = routeName
        self.cluster = cluster
        self.timeoutSeconds = timeoutSeconds
        self.retry = retry
    }
}

/// Envoy's retry policy for a fallback route.
public struct RetryPlan: Sendable, Equatable {
    /// Envoy `retry_on`, e.g. `connect-failure,reset,5xx,retriable-status-codes`.
    public var retryOn: String
    public var retriableStatusCodes: [Int]
    public var numRetries: Int
    /// Move to the next priority on each retry (`envoy.retry_priorities.previous_priorities`):
    /// with an aggregate cluster, that is the next backend of the fallback order.
    public var nextPriorityOnRetry: Bool

    public init(
        retryOn: String = "connect-failure,reset,5xx,retriable-status-codes", retriableStatusCodes: [Int] = [429],
        numRetries: Int, nextPriorityOnRetry: Bool = true
    ) {
        self.retryOn = retryOn
        self.retriableStatusCodes = retriableStatusCodes
        self.numRetries = numRetries
        self.nextPriorityOnRetry = nextPriorityOnRetry
    }
}

/// One upstream cluster: a backend's endpoints, or an aggregate of other clusters (fallback).
public struct ClusterPlan: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Hosts to connect to (IPs or DNS names; names are resolved by Envoy, STRICT_DNS).
        case endpoints([EndpointPlan])
        /// Other clusters in priority order (Envoy's aggregate cluster): the first is tried first.
        case aggregate([String])
        /// No hosts of its own: each request goes to the address in its `x-envoy-original-dst-host`
        /// header (ORIGINAL_DST). The module's background worker scrapes the picker pools'
        /// `/metrics` through it, one endpoint at a time.
        case originalDestination
    }

    /// How Envoy picks a host among the cluster's endpoints.
    public enum LoadBalancer: Sendable, Equatable {
        case roundRobin
        case leastRequest
        /// A load-balancing policy of the module: its name and its JSON config
        /// (`sluice_endpoint_picker` and the `EndpointPickerConfig` JSON).
        case module(policy: String, config: [UInt8])
    }

    public var name: String
    public var kind: Kind
    public var connectTimeoutMillis: Int
    /// Connect with TLS, sending this SNI (nil: plain HTTP).
    public var upstreamTLS: UpstreamTLSPlan?
    /// Speak HTTP/2 to the hosts (gRPC-style servers); HTTP/1.1 otherwise.
    public var http2: Bool
    /// The `sluice_upstream` filter's config (the JSON `UpstreamConfig.parse` reads), run once per
    /// attempt in this cluster's upstream filter chain; nil for a cluster without it.
    public var upstreamFilterConfig: [UInt8]?
    /// Generic secrets the upstream filter config names (for consistency checks and SDS).
    public var secretNames: [String]
    /// Host selection (endpoint clusters only).
    public var loadBalancer: LoadBalancer = .roundRobin

    public init(
        name: String, kind: Kind, connectTimeoutMillis: Int = 2000, upstreamTLS: UpstreamTLSPlan? = nil, http2: Bool = false,
        upstreamFilterConfig: [UInt8]? = nil, secretNames: [String] = []
    ) {
        self.name = name
        self.kind = kind
        self.connectTimeoutMillis = connectTimeoutMillis
        self.upstreamTLS = upstreamTLS
        self.http2 = http2
        self.upstreamFilterConfig = upstreamFilterConfig
        self.secretNames = secretNames
    }

    /// Whether some endpoint is a DNS name rather than an IP address (the cluster is then STRICT_DNS).
    public var usesDNS: Bool {
        guard case .endpoints(let endpoints) = kind else { return false }
        return endpoints.contains { !$0.isIPAddress }
    }
}

/// One host of a cluster.
public struct EndpointPlan: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The backend this host belongs to, for an upstream filter that serves several backends
    /// (host metadata `filter_metadata.sluice.backend`); nil when the cluster has one backend.
    public var backend: String?
    /// Load-balancing priority within the cluster (0 first).
    public var priority: Int

    public init(host: String, port: Int, backend: String? = nil, priority: Int = 0) {
        self.host = host
        self.port = port
        self.backend = backend
        self.priority = priority
    }

    /// Whether `host` is a literal IPv4 or IPv6 address.
    public var isIPAddress: Bool {
        if host.contains(":") { return true }  // IPv6 literals; host names have no colon
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { part in UInt8(part) != nil }
    }
}

/// TLS towards a cluster's hosts.
public struct UpstreamTLSPlan: Sendable, Equatable {
    public var sni: String
    /// Verify the server certificate against the system's trust store (off only for test servers).
    public var verify: Bool

    public init(sni: String, verify: Bool = true) {
        self.sni = sni
        self.verify = verify
    }
}

/// One generic secret (a provider credential) and where sluiced reads its value. The value goes
/// to Envoy over SDS (or into `render`'s static bootstrap); it is never written into a config.
public struct SecretPlan: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// A file holding the secret (trailing newline trimmed); re-read when it changes.
        case file(String)
        /// An environment variable of sluiced's process.
        case environment(String)
        /// A literal value: only the embedded demo config uses this, for the simulators' fake keys.
        case literal(String)
    }

    public var name: String
    public var source: Source

    public init(name: String, source: Source) {
        self.name = name
        self.source = source
    }
}
