// The snapshots sluiced serves: one for every node, or one per node id (go-control-plane's
// `SnapshotCache`), and the streams waiting for the next one.
//
// After a NACK the cache keeps serving the last accepted version of the refused type: a type
// version some Envoy NACKed is replaced, in what every stream (and every Envoy that connects
// later) is served, by the last version of that type an Envoy ACKed, until a new snapshot
// changes that type. (Without this, an Envoy starting after a bad edit would get a filter config
// it refuses and no listener at all.)

public import SluiceControl
import Synchronization

/// Holds the current snapshot(s) and wakes the streams when one changes.
public final class SnapshotCache: Sendable {
    private struct State {
        var shared: XDSSnapshot?
        var perNode: [String: XDSSnapshot] = [:]
        var counter: UInt64 = 0
        /// Per snapshot key (nil: the shared one): the last version of each type an Envoy ACKed,
        /// and the versions of the current snapshot an Envoy NACKed.
        var accepted: [String?: [XDSType: SnapshotResources]] = [:]
        var rejected: [String?: [XDSType: String]] = [:]
        var watchers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextWatcher: UInt64 = 0
        var closed = false
    }

    private let state = Mutex(State())

    public init() {}

    /// The snapshot a node gets: its own if it has one, else the shared one; a type an Envoy
    /// NACKed is served at its last accepted version.
    public func snapshot(forNode node: String? = nil) -> XDSSnapshot? {
        state.withLock { state in
            let key = Self.key(node, state)
            guard let current = key.flatMap({ state.perNode[$0] }) ?? state.shared else { return nil }
            guard let rejected = state.rejected[key], !rejected.isEmpty else { return current }
            var types = current.types
            for (type, version) in rejected where current[type].version == version {
                if let good = state.accepted[key]?[type] { types[type] = good }
            }
            return XDSSnapshot(version: current.version, types: types)
        }
    }

    /// The latest snapshot set for a node, NACKed types included.
    public func latestSnapshot(forNode node: String? = nil) -> XDSSnapshot? {
        state.withLock { state in Self.key(node, state).flatMap { state.perNode[$0] } ?? state.shared }
    }

    private static func key(_ node: String?, _ state: State) -> String? {
        guard let node, state.perNode[node] != nil else { return nil }
        return node
    }

    /// An Envoy ACKed `version` of `type`: it becomes the type's last accepted version.
    func accepted(_ type: XDSType, version: String, node: String?) {
        state.withLock { state in
            let key = Self.key(node, state)
            guard let current = key.flatMap({ state.perNode[$0] }) ?? state.shared else { return }
            if current[type].version == version, state.rejected[key]?[type] != version {
                state.accepted[key, default: [:]][type] = current[type]
            }
        }
    }

    /// An Envoy NACKed `version` of `type`: if it is the current one, every stream is served the
    /// last accepted version of that type instead (when there is one).
    func rejected(_ type: XDSType, version: String, node: String?) {
        let changed = state.withLock { state -> Bool in
            let key = Self.key(node, state)
            guard let current = key.flatMap({ state.perNode[$0] }) ?? state.shared, current[type].version == version,
                state.rejected[key]?[type] != version
            else { return false }
            state.rejected[key, default: [:]][type] = version
            return state.accepted[key]?[type] != nil
        }
        if changed { wakeAll() }
    }

    /// Makes `resources` the next snapshot (for every node, or for `node` only), with the next
    /// version; types unchanged keep their versions. Refused (and nothing changes) when the
    /// snapshot is not internally consistent. Every stream is woken to push what changed.
    @discardableResult
    public func setResources(_ resources: XDSResources, forNode node: String? = nil) throws(XDSEncodingError) -> XDSSnapshot {
        let snapshot = try state.withLock { state throws(XDSEncodingError) -> XDSSnapshot in
            let previous = node.flatMap { state.perNode[$0] } ?? state.shared
            let candidate = XDSSnapshot(version: String(state.counter + 1), resources: resources, previous: previous)
            let problems = candidate.consistencyProblems()
            guard problems.isEmpty else { throw .inconsistentPlan(problems) }
            state.counter += 1
            if let node {
                state.perNode[node] = candidate
            } else {
                state.shared = candidate
            }
            // A new version of a refused type is a new candidate.
            let key: String? = node
            if var rejected = state.rejected[key] {
                rejected = rejected.filter { candidate[$0.key].version == $0.value }
                state.rejected[key] = rejected
            }
            return candidate
        }
        wakeAll()
        return snapshot
    }

    /// Encodes `plan` and makes it the next snapshot.
    @discardableResult
    public func setPlan(_ plan: EnvoyPlan, secrets: SecretReader = .live, forNode node: String? = nil) throws(XDSEncodingError) -> XDSSnapshot {
        try setResources(ResourceEncoder.encode(plan, secrets: secrets), forNode: node)
    }

    /// Drops a node's own snapshot (it gets the shared one again).
    public func clearSnapshot(forNode node: String) {
        state.withLock { _ = $0.perNode.removeValue(forKey: node) }
        wakeAll()
    }

    /// Ends every stream's wait (shutdown): streams return and Envoy keeps its config.
    public func close() {
        let watchers = state.withLock { state in
            state.closed = true
            defer { state.watchers = [:] }
            return Array(state.watchers.values)
        }
        for watcher in watchers { watcher.finish() }
    }

    /// A wake-up per snapshot change (coalesced) until `cancelWatch`.
    func watch() -> (id: UInt64, changes: AsyncStream<Void>) {
        let (stream, continuation) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let id = state.withLock { state -> UInt64? in
            guard !state.closed else { return nil }
            state.nextWatcher += 1
            state.watchers[state.nextWatcher] = continuation
            return state.nextWatcher
        }
        guard let id else {
            continuation.finish()
            return (0, stream)
        }
        return (id, stream)
    }

    func cancelWatch(_ id: UInt64) {
        let continuation = state.withLock { $0.watchers.removeValue(forKey: id) }
        continuation?.finish()
    }

    private func wakeAll() {
        let watchers = state.withLock { Array($0.watchers.values) }
        for watcher in watchers { watcher.yield() }
    }
}
