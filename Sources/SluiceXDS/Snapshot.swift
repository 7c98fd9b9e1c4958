// An immutable, versioned, internally consistent set of xDS resources: what every connected
// Envoy converges to (go-control-plane's `cache.Snapshot`).
//
// Versions are per type: a type whose resources did not change keeps the version it had in the
// previous snapshot, so a snapshot that only changes the `sluice` filter's config re-sends only
// ECDS (no listener update, no drain), and one that only rotates a key re-sends only SDS.

public import SluiceControl
public import SluiceXDSProto
public import SwiftProtobuf

/// The resources of one type in a snapshot.
public struct SnapshotResources: Sendable, Equatable {
    /// The version Envoy sees in `version_info` for this type.
    public let version: String
    /// Names in the plan's order.
    public let names: [String]
    public let byName: [String: XDSAny]
    /// A digest of the names and bytes, to tell whether the type changed between snapshots.
    let digest: UInt64

    init(version: String, resources: [XDSResource]) {
        self.version = version
        self.names = resources.map(\.name)
        var byName: [String: XDSAny] = [:]
        for resource in resources { byName[resource.name] = resource.resource }
        self.byName = byName
        self.digest = Self.digest(resources)
    }

    init(version: String, carrying previous: SnapshotResources) {
        self.version = version
        self.names = previous.names
        self.byName = previous.byName
        self.digest = previous.digest
    }

    /// FNV-1a over each resource's name, type URL and bytes (deterministically serialised).
    static func digest(_ resources: [XDSResource]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        func mix(_ bytes: some Sequence<UInt8>) {
            for byte in bytes {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
            hash ^= 0xff
            hash = hash &* 0x0000_0100_0000_01b3
        }
        for resource in resources {
            mix(resource.name.utf8)
            mix(resource.resource.typeURL.utf8)
            mix(resource.resource.value)
        }
        return hash
    }

    /// The resources for a subscription: all of them (wildcard) or those of the names asked for
    /// that exist, in the snapshot's order.
    public func resources(for names: Set<String>, wildcard: Bool) -> [XDSAny] {
        self.names.compactMap { name in
            (wildcard || names.contains(name)) ? byName[name] : nil
        }
    }
}

/// One version of the whole config.
public struct XDSSnapshot: Sendable, Equatable {
    /// The snapshot's own version (a counter): the latest version of any of its types.
    public let version: String
    public let types: [XDSType: SnapshotResources]

    /// The resources of one type (empty when the snapshot has none).
    public subscript(type: XDSType) -> SnapshotResources {
        types[type] ?? SnapshotResources(version: version, resources: [])
    }

    init(version: String, types: [XDSType: SnapshotResources]) {
        self.version = version
        self.types = types
    }

    /// A snapshot of `resources` at `version`; types unchanged since `previous` keep its versions.
    public init(version: String, resources: XDSResources, previous: XDSSnapshot? = nil) {
        self.version = version
        var types: [XDSType: SnapshotResources] = [:]
        for type in XDSType.allCases {
            let fresh = SnapshotResources(version: version, resources: resources[type])
            if let old = previous?.types[type], old.digest == fresh.digest {
                types[type] = SnapshotResources(version: old.version, carrying: old)
            } else {
                types[type] = fresh
            }
        }
        self.types = types
    }

    /// The snapshot's resources (to build the next snapshot from).
    public var resources: XDSResources {
        var resources = XDSResources()
        for (type, items) in types {
            resources[type] = items.names.compactMap { name in items.byName[name].map { XDSResource(name: name, resource: $0) } }
        }
        return resources
    }

    /// The inconsistencies of the snapshot: a listener's route table, an EDS cluster's endpoints,
    /// an upstream filter's secret, or the filter config the listeners discover, missing.
    public func consistencyProblems() -> [String] {
        var problems: [String] = []
        for name in self[.listener].names {
            guard let any = self[.listener].byName[name], let listener = try? Envoy_Config_Listener_V3_Listener(unpackingAny: any) else {
                problems.append("listener '\(name)' does not decode")
                continue
            }
            for chain in listener.filterChains {
                for filter in chain.filters {
                    guard let hcm = try? Envoy_Extensions_Filters_Network_HttpConnectionManager_V3_HttpConnectionManager(unpackingAny: filter.typedConfig)
                    else { continue }
                    if case .rds(let rds)? = hcm.routeSpecifier, self[.route].byName[rds.routeConfigName] == nil {
                        problems.append("listener '\(name)' uses route table '\(rds.routeConfigName)', which is not in the snapshot")
                    }
                    for httpFilter in hcm.httpFilters {
                        guard case .configDiscovery? = httpFilter.configType else { continue }
                        if self[.extensionConfig].byName[httpFilter.name] == nil {
                            problems.append("listener '\(name)' discovers filter config '\(httpFilter.name)', which is not in the snapshot")
                        }
                    }
                }
            }
        }
        for name in self[.cluster].names {
            guard let any = self[.cluster].byName[name], let cluster = try? Envoy_Config_Cluster_V3_Cluster(unpackingAny: any) else {
                problems.append("cluster '\(name)' does not decode")
                continue
            }
            if case .type(.eds)? = cluster.clusterDiscoveryType {
                let serviceName = cluster.edsClusterConfig.serviceName.isEmpty ? name : cluster.edsClusterConfig.serviceName
                if self[.endpoint].byName[serviceName] == nil {
                    problems.append("EDS cluster '\(name)' has no endpoints '\(serviceName)' in the snapshot")
                }
            }
        }
        for name in self[.route].names {
            guard let any = self[.route].byName[name], let routes = try? Envoy_Config_Route_V3_RouteConfiguration(unpackingAny: any) else {
                problems.append("route table '\(name)' does not decode")
                continue
            }
            for host in routes.virtualHosts {
                for route in host.routes {
                    if case .cluster(let cluster)? = route.route.clusterSpecifier, self[.cluster].byName[cluster] == nil {
                        problems.append("route table '\(name)' routes to cluster '\(cluster)', which is not in the snapshot")
                    }
                }
            }
        }
        return problems
    }
}
