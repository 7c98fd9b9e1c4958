// What `GET /v1/admin/status` reports about the Envoys sluiced serves: per node, the version of
// each resource type it has ACKed, and its last NACK with Envoy's error_detail. The xDS server
// implements `ConfigStatusSource`; the API only reads it.
public import Foundation

/// Supplies the xDS side of the status endpoint.
public protocol ConfigStatusSource: Sendable {
    /// A snapshot of what every known Envoy has accepted or refused.
    func configStatus() async -> ConfigStatus
}

/// The config versions sluiced serves and what each Envoy did with them.
public struct ConfigStatus: Sendable, Equatable, Codable {
    /// The version of the snapshot being served now, per type URL
    /// (`type.googleapis.com/envoy.config.listener.v3.Listener` → `"17"`).
    public var servedVersions: [String: String]
    /// Every Envoy node seen, connected or not.
    public var nodes: [EnvoyNodeStatus]

    public init(servedVersions: [String: String] = [:], nodes: [EnvoyNodeStatus] = []) {
        self.servedVersions = servedVersions
        self.nodes = nodes
    }

    enum CodingKeys: String, CodingKey {
        case servedVersions = "served_versions"
        case nodes
    }
}

/// One Envoy, by its bootstrap `node.id`.
public struct EnvoyNodeStatus: Sendable, Equatable, Codable {
    public var nodeID: String
    /// The bootstrap's `node.cluster`, if set.
    public var cluster: String?
    /// Whether its ADS stream is open now.
    public var connected: Bool
    /// When sluiced last heard from it.
    public var lastSeen: Date?
    /// Per resource type: the version it ACKed last.
    public var resources: [ResourceTypeStatus]
    /// Its most recent NACK, if it ever sent one (kept after later ACKs, with its time).
    public var lastNack: NackStatus?

    public init(
        nodeID: String, cluster: String? = nil, connected: Bool, lastSeen: Date? = nil,
        resources: [ResourceTypeStatus] = [], lastNack: NackStatus? = nil
    ) {
        self.nodeID = nodeID
        self.cluster = cluster
        self.connected = connected
        self.lastSeen = lastSeen
        self.resources = resources
        self.lastNack = lastNack
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case cluster, connected
        case lastSeen = "last_seen"
        case resources
        case lastNack = "last_nack"
    }
}

/// What one Envoy holds of one resource type.
public struct ResourceTypeStatus: Sendable, Equatable, Codable {
    public var typeURL: String
    /// The version it ACKed last (nil: none yet).
    public var ackedVersion: String?
    /// When it ACKed it.
    public var ackedAt: Date?

    public init(typeURL: String, ackedVersion: String?, ackedAt: Date? = nil) {
        self.typeURL = typeURL
        self.ackedVersion = ackedVersion
        self.ackedAt = ackedAt
    }

    enum CodingKeys: String, CodingKey {
        case typeURL = "type_url"
        case ackedVersion = "acked_version"
        case ackedAt = "acked_at"
    }
}

/// A refused config: Envoy's `error_detail.message`, and when.
public struct NackStatus: Sendable, Equatable, Codable {
    public var typeURL: String
    /// The version Envoy refused.
    public var version: String?
    public var message: String
    public var at: Date

    public init(typeURL: String, version: String?, message: String, at: Date) {
        self.typeURL = typeURL
        self.version = version
        self.message = message
        self.at = at
    }

    enum CodingKeys: String, CodingKey {
        case typeURL = "type_url"
        case version, message, at
    }
}

/// A status source that returns a fixed value: before the xDS server exists, and in tests.
public struct StaticConfigStatusSource: ConfigStatusSource {
    public var status: ConfigStatus

    public init(_ status: ConfigStatus = ConfigStatus()) { self.status = status }

    public func configStatus() async -> ConfigStatus { status }
}
