// What `GET /v1/admin/status` reports about the Envoys sluiced serves: per node, the version of
// each resource type it has ACKed, and its last NACK with Envoy's error_detail. The xDS server
// implements `ConfigStatusSource`; the API only reads it.
public import Foundation

/// Supplies the xDS side of the status endpoint. (SluiceXDS's `ADSServer.configStatus()` maps onto
/// it one to one; the names differ so sluiced can import both modules.)
public protocol ConfigStatusSource: Sendable {
    /// A snapshot of what every known Envoy has accepted or refused.
    func fleetStatus() async -> FleetStatus
}

/// The config versions sluiced serves and what each Envoy did with them.
public struct FleetStatus: Sendable, Equatable, Codable {
    /// The version of the snapshot being served now (nil before the first).
    public var servedVersion: String?
    /// Every Envoy node seen, connected or not, sorted by id.
    public var nodes: [EnvoyNodeStatus]
    /// Why the last change (a config edit, a database write) was refused, while the previous
    /// config keeps being served; nil once a change is served again.
    public var lastRefusedChange: String?

    public init(servedVersion: String? = nil, nodes: [EnvoyNodeStatus] = [], lastRefusedChange: String? = nil) {
        self.servedVersion = servedVersion
        self.nodes = nodes
        self.lastRefusedChange = lastRefusedChange
    }

    enum CodingKeys: String, CodingKey {
        case servedVersion = "served_version"
        case nodes
        case lastRefusedChange = "last_refused_change"
    }
}

/// One Envoy, by its bootstrap `node.id`.
public struct EnvoyNodeStatus: Sendable, Equatable, Codable {
    public var nodeID: String
    /// The bootstrap's `node.cluster`, if set.
    public var cluster: String?
    /// Whether an ADS stream of this node is open now.
    public var connected: Bool
    /// Whether it ACKed, for every type, the version it was last sent (it runs what sluiced serves).
    public var inSync: Bool
    /// When sluiced last heard from it.
    public var lastSeen: Date?
    /// Per resource type: the version it was sent and the version it ACKed.
    public var resources: [ResourceTypeStatus]
    /// Its most recent NACK, if it ever sent one; `resolved` once a later version of that type is ACKed.
    public var lastNack: NackStatus?

    public init(
        nodeID: String, cluster: String? = nil, connected: Bool, inSync: Bool, lastSeen: Date? = nil,
        resources: [ResourceTypeStatus] = [], lastNack: NackStatus? = nil
    ) {
        self.nodeID = nodeID
        self.cluster = cluster
        self.connected = connected
        self.inSync = inSync
        self.lastSeen = lastSeen
        self.resources = resources
        self.lastNack = lastNack
    }

    enum CodingKeys: String, CodingKey {
        case nodeID = "node_id"
        case cluster, connected
        case inSync = "in_sync"
        case lastSeen = "last_seen"
        case resources
        case lastNack = "last_nack"
    }
}

/// What one Envoy holds of one resource type.
public struct ResourceTypeStatus: Sendable, Equatable, Codable {
    /// `type.googleapis.com/envoy.config.listener.v3.Listener` and so on.
    public var typeURL: String
    /// The version it ACKed last (nil: none yet).
    public var ackedVersion: String?
    /// The version last sent to it (nil: none yet).
    public var sentVersion: String?

    public init(typeURL: String, ackedVersion: String?, sentVersion: String? = nil) {
        self.typeURL = typeURL
        self.ackedVersion = ackedVersion
        self.sentVersion = sentVersion
    }

    enum CodingKeys: String, CodingKey {
        case typeURL = "type_url"
        case ackedVersion = "acked_version"
        case sentVersion = "sent_version"
    }
}

/// A refused config: Envoy's `error_detail`, and when.
public struct NackStatus: Sendable, Equatable, Codable {
    public var typeURL: String
    /// The version Envoy refused.
    public var rejectedVersion: String
    /// The version Envoy kept running ("" if none).
    public var keptVersion: String
    /// `error_detail.code` (a gRPC status code).
    public var code: Int32
    /// `error_detail.message`.
    public var message: String
    public var at: Date
    /// True once the node ACKed a later version of that type.
    public var resolved: Bool

    public init(
        typeURL: String, rejectedVersion: String, keptVersion: String = "", code: Int32 = 0, message: String, at: Date,
        resolved: Bool = false
    ) {
        self.typeURL = typeURL
        self.rejectedVersion = rejectedVersion
        self.keptVersion = keptVersion
        self.code = code
        self.message = message
        self.at = at
        self.resolved = resolved
    }

    enum CodingKeys: String, CodingKey {
        case typeURL = "type_url"
        case rejectedVersion = "rejected_version"
        case keptVersion = "kept_version"
        case code, message, at, resolved
    }
}

/// A status source that returns a fixed value: before the xDS server exists, and in tests.
public struct StaticConfigStatusSource: ConfigStatusSource {
    public var status: FleetStatus

    public init(_ status: FleetStatus = FleetStatus()) { self.status = status }

    public func fleetStatus() async -> FleetStatus { status }
}
