// What each Envoy runs, for the admin API: per node, the version of each type it ACKed, the last
// NACK (with Envoy's own error_detail), and whether it is connected.

public import Foundation
import Synchronization

/// The config state of one Envoy node (by `node.id`).
public struct ConfigStatus: Sendable, Equatable {
    /// A refused config.
    public struct Nack: Sendable, Equatable {
        public var type: XDSType
        /// The version Envoy refused.
        public var rejectedVersion: String
        /// The version Envoy keeps running (its last ACK of that type; "" if none).
        public var keptVersion: String
        /// Envoy's `error_detail`: gRPC status code and message.
        public var code: Int32
        public var message: String
        public var time: Date
    }

    public var nodeID: String
    /// `node.cluster` of the Envoy.
    public var cluster: String
    /// The version of each type the node last ACKed.
    public var ackedVersions: [XDSType: String]
    /// The version of each type last sent to the node.
    public var sentVersions: [XDSType: String]
    /// The last NACK, kept until the node ACKs another version of that type than the one it
    /// refused or the one it kept (re-sent to it as the last accepted).
    public var lastNack: Nack?
    /// The most recent NACK ever seen (kept for history even after a later ACK).
    public var lastNackEver: Nack?
    /// Open ADS streams of this node.
    public var connectedStreams: Int
    public var lastSeen: Date

    public var connected: Bool { connectedStreams > 0 }

    /// Whether the node ACKed every type it was sent at the version sent (it runs what sluiced serves).
    public var isInSync: Bool {
        sentVersions.allSatisfy { ackedVersions[$0.key] == $0.value }
    }

    public init(nodeID: String, cluster: String = "", lastSeen: Date = Date()) {
        self.nodeID = nodeID
        self.cluster = cluster
        self.ackedVersions = [:]
        self.sentVersions = [:]
        self.lastNack = nil
        self.lastNackEver = nil
        self.connectedStreams = 0
        self.lastSeen = lastSeen
    }

    /// Applies a stream event (`now` is the event's time).
    public mutating func apply(_ event: ADSStreamEvent, now: Date = Date()) {
        lastSeen = now
        switch event {
        case .ack(let type, let version):
            ackedVersions[type] = version
            if let nack = lastNack, nack.type == type, version != nack.rejectedVersion, version != nack.keptVersion {
                lastNack = nil  // a later version of the refused type is running
            }
        case .nack(let type, let rejected, let kept, let code, let message):
            let nack = Nack(type: type, rejectedVersion: rejected, keptVersion: kept, code: code, message: message, time: now)
            lastNack = nack
            lastNackEver = nack
        case .stale, .unknownType:
            break
        }
    }
}

/// The `ConfigStatus` of every node seen, shared by all streams.
public final class ConfigStatusRegistry: Sendable {
    private let statuses = Mutex<[String: ConfigStatus]>([:])

    public init() {}

    /// All nodes, sorted by id.
    public func all() -> [ConfigStatus] {
        statuses.withLock { Array($0.values) }.sorted { $0.nodeID < $1.nodeID }
    }

    public func status(node: String) -> ConfigStatus? {
        statuses.withLock { $0[node] }
    }

    func update(node: String, cluster: String? = nil, _ body: (inout ConfigStatus) -> Void) {
        statuses.withLock { all in
            var status = all[node] ?? ConfigStatus(nodeID: node)
            if let cluster, !cluster.isEmpty { status.cluster = cluster }
            body(&status)
            all[node] = status
        }
    }
}
