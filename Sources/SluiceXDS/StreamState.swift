// The state-of-the-world protocol of one ADS stream, as pure logic (no network, no clock), the
// way go-control-plane's sotw server keeps it: per type URL, what the Envoy subscribed to, the
// version and nonce last sent, the version last ACKed.
//
// - A request whose `response_nonce` is not the last one sent for its type answers an older
//   response: it is stale and ignored (Envoy sends another for the latest).
// - A request answering the latest response is an ACK (no `error_detail`; `version_info` is the
//   version applied) or a NACK (`error_detail` set; `version_info` is the last version Envoy
//   accepted, which it keeps running). A NACKed version is not re-sent (unless the NACK also asks
//   for other names): the next push is the next snapshot that changes that type.
// - The first request of a type (empty nonce) and a change of subscription (RDS/EDS/SDS/ECDS
//   names) are answered with the current snapshot's resources for the names asked; LDS and CDS
//   with an empty name list are wildcard (every resource).
// - A new snapshot is pushed to the stream for every type it subscribed to whose version changed,
//   in make-before-break order (`XDSType.pushOrder`). Removals come after: when clusters go
//   away, the CDS push first carries the new clusters *and* the removed ones (version
//   `<v>-make`), then endpoints, listeners, routes, secrets and the filter config, and only then
//   CDS without the removed clusters (version `<v>`), so no route ever names a missing cluster.
// - Every CDS response is followed by the stream's EDS resources, even when they did not change:
//   a changed EDS cluster is a new cluster in Envoy, warming until it gets its endpoints, and
//   Envoy's re-request for the same names at the same version looks like an ACK (without this the
//   update waits for Envoy's 15 s initial_fetch_timeout).

public import SluiceXDSProto

/// What happened on a stream, for logs and `ConfigStatus`.
public enum ADSStreamEvent: Sendable, Equatable {
    /// Envoy applied `version` of `type`.
    case ack(type: XDSType, version: String)
    /// Envoy refused `rejectedVersion` of `type` and keeps running `keptVersion`.
    case nack(type: XDSType, rejectedVersion: String, keptVersion: String, code: Int32, message: String)
    /// A request answering an older response than the last one sent (ignored).
    case stale(type: XDSType, nonce: String)
    /// A request for a type sluiced does not serve (answered with nothing).
    case unknownType(String)
}

/// One ADS stream's state.
public struct ADSStreamState: Sendable {
    /// What the stream knows of one type.
    public struct TypeState: Sendable, Equatable {
        /// Resource names asked for (empty with `wildcard`).
        public var names: Set<String> = []
        public var wildcard = false
        /// The version and nonce of the last response sent (nil: none yet).
        public var sentVersion: String?
        public var sentNonce: String?
        /// The version Envoy last ACKed on this stream.
        public var ackedVersion: String?
        /// The last version Envoy NACKed.
        public var rejectedVersion: String?
        /// What the last response carried (wildcard types: to keep removed resources while the
        /// types that use them change).
        var sent: [(name: String, resource: XDSAny)] = []

        public static func == (lhs: TypeState, rhs: TypeState) -> Bool {
            lhs.names == rhs.names && lhs.wildcard == rhs.wildcard && lhs.sentVersion == rhs.sentVersion && lhs.sentNonce == rhs.sentNonce
                && lhs.ackedVersion == rhs.ackedVersion && lhs.rejectedVersion == rhs.rejectedVersion
        }
    }

    /// The Envoy at the other end (from the first request: Envoy may send it only once).
    public private(set) var node: Envoy_Config_Core_V3_Node?
    public private(set) var types: [XDSType: TypeState] = [:]
    private var nonceCounter: UInt64 = 0
    private let noncePrefix: String

    /// `noncePrefix` makes nonces unique across streams (helps reading logs).
    public init(noncePrefix: String = "") {
        self.noncePrefix = noncePrefix
    }

    /// Handles one request; returns what happened and the responses to send, in order.
    public mutating func receive(_ request: DiscoveryRequest, snapshot: XDSSnapshot?) -> (events: [ADSStreamEvent], responses: [DiscoveryResponse]) {
        if request.hasNode { node = request.node }
        guard let type = XDSType(rawValue: request.typeURL) else {
            return ([.unknownType(request.typeURL)], [])
        }
        var state = types[type] ?? TypeState()
        let nonce = request.responseNonce
        if !nonce.isEmpty && nonce != state.sentNonce {
            return ([.stale(type: type, nonce: nonce)], [])
        }
        var events: [ADSStreamEvent] = []
        let names = Set(request.resourceNames)
        let wildcard = type.isWildcardByDefault && (names.isEmpty || names.contains("*"))
        let subscriptionChanged = names != state.names || wildcard != state.wildcard
        state.names = wildcard ? [] : names
        state.wildcard = wildcard

        let respond: Bool
        if nonce.isEmpty {
            // The first request of this type on the stream (Envoy's version_info is what it has
            // from an earlier stream, if any): answer with the current state of the world.
            respond = true
        } else if request.hasErrorDetail {
            let rejected = state.sentVersion ?? ""
            state.rejectedVersion = rejected
            events.append(
                .nack(
                    type: type, rejectedVersion: rejected, keptVersion: request.versionInfo, code: request.errorDetail.code,
                    message: request.errorDetail.message))
            // Keep serving the last accepted version: nothing is re-sent for this type until a
            // snapshot changes it, unless Envoy now asks for other names (which must be answered).
            respond = subscriptionChanged
        } else {
            state.ackedVersion = request.versionInfo
            events.append(.ack(type: type, version: request.versionInfo))
            // New names asked (RDS/EDS/SDS after a listener or cluster change), or a snapshot
            // newer than the last response.
            respond = subscriptionChanged || (snapshot.map { state.sentVersion != $0[type].version } ?? false)
        }
        var responses: [DiscoveryResponse] = []
        if respond, let snapshot {
            responses.append(makeResponse(type, &state, snapshot))
        }
        types[type] = state
        if type == .cluster, !responses.isEmpty, let snapshot, var endpoints = types[.endpoint], endpoints.sentVersion != nil {
            responses.append(makeResponse(.endpoint, &endpoints, snapshot))
            types[.endpoint] = endpoints
        }
        return (events, responses)
    }

    /// The pushes a new snapshot causes on this stream: every subscribed type whose version
    /// changed, in make-before-break order.
    public mutating func push(_ snapshot: XDSSnapshot) -> [DiscoveryResponse] {
        var responses: [DiscoveryResponse] = []
        var removeClustersLast = false
        var clustersPushed = false
        for type in XDSType.pushOrder {
            guard var state = types[type] else { continue }
            let changed = state.sentVersion != snapshot[type].version
            // Endpoints follow every cluster push (the updated clusters warm on them).
            let endpointsFollowClusters = type == .endpoint && clustersPushed && state.sentVersion != nil
            guard changed || endpointsFollowClusters else { continue }
            if type == .cluster { clustersPushed = true }
            if type == .cluster, state.wildcard {
                let kept = Set(snapshot[.cluster].names)
                let removed = state.sent.filter { !kept.contains($0.name) }
                if !removed.isEmpty {
                    // Make: the new clusters and, for now, the removed ones.
                    responses.append(makeResponse(type, &state, snapshot, keeping: removed))
                    removeClustersLast = true
                    types[type] = state
                    continue
                }
            }
            responses.append(makeResponse(type, &state, snapshot))
            types[type] = state
        }
        if removeClustersLast, var state = types[.cluster] {
            // Break: the clusters nothing uses any more go.
            responses.append(makeResponse(.cluster, &state, snapshot))
            types[.cluster] = state
        }
        return responses
    }

    private mutating func makeResponse(
        _ type: XDSType, _ state: inout TypeState, _ snapshot: XDSSnapshot, keeping extra: [(name: String, resource: XDSAny)] = []
    ) -> DiscoveryResponse {
        nonceCounter += 1
        let resources = snapshot[type]
        var response = DiscoveryResponse()
        response.versionInfo = extra.isEmpty ? resources.version : resources.version + "-make"
        response.typeURL = type.typeURL
        response.nonce = noncePrefix + String(nonceCounter)
        let names = resources.names.filter { state.wildcard || state.names.contains($0) }
        let items = names.compactMap { name in resources.byName[name].map { (name: name, resource: $0) } } + extra
        response.resources = items.map(\.resource)
        state.sentVersion = response.versionInfo
        state.sentNonce = response.nonce
        state.sent = state.wildcard ? items : []
        return response
    }
}
