// The snapshots sluiced serves: one for every node, or one per node id (go-control-plane's
// `SnapshotCache`), and the streams waiting for the next one.

public import SluiceControl
import Synchronization

/// Holds the current snapshot(s) and wakes the streams when one changes.
public final class SnapshotCache: Sendable {
    private struct State {
        var shared: XDSSnapshot?
        var perNode: [String: XDSSnapshot] = [:]
        var counter: UInt64 = 0
        var watchers: [UInt64: AsyncStream<Void>.Continuation] = [:]
        var nextWatcher: UInt64 = 0
        var closed = false
    }

    private let state = Mutex(State())

    public init() {}

    /// The snapshot a node gets: its own if it has one, else the shared one.
    public func snapshot(forNode node: String? = nil) -> XDSSnapshot? {
        state.withLock { state in
            if let node, let own = state.perNode[node] { return own }
            return state.shared
        }
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
