// The process-wide publication point of model-server metric snapshots: the background worker's
// scraper (main thread) publishes one immutable `PublishedEndpointPool` per pool; the endpoint
// picker's load balancers (one per Envoy worker) read them.
//
// Readers stay lock-free on the hot path: every pick does one acquiring load of `version` and
// compares it with the version its worker last fetched. Only when a newer snapshot was published
// (every 50 ms at most, by default) does the worker take the mutex, once, to copy the reference.
// A fully lock-free swap of a strong reference would need hazard pointers or deferred freeing
// (Swift has no atomic strong reference); a mutex taken once per worker per publication costs
// nothing measurable and frees old snapshots as soon as the last worker moves on.

public import SluiceCore
import Synchronization

/// One pool's metrics as published: the endpoints' addresses ("ip:port", as Envoy names its
/// hosts) and, at the same positions, their figures. Immutable.
public final class PublishedEndpointPool: Sendable {
    public let pool: String
    /// Endpoint `i` of `snapshot` is the host whose address is `addresses[i]`.
    public let addresses: [[UInt8]]
    public let snapshot: EndpointSnapshot

    /// Addresses beyond the snapshot's endpoints are dropped (and the other way round).
    public init(pool: String, addresses: [String], snapshot: EndpointSnapshot) {
        let count = min(addresses.count, snapshot.endpoints.count)
        self.pool = pool
        self.addresses = addresses.prefix(count).map { Array($0.utf8) }
        self.snapshot = EndpointSnapshot(endpoints: Array(snapshot.endpoints.prefix(count)), generation: snapshot.generation)
    }
}

public enum ProcessEndpointSnapshots {
    private static let publishedVersion = Atomic<UInt64>(0)
    private static let pools = Mutex<[String: PublishedEndpointPool]>([:])

    /// Increases with every publication or withdrawal. Any thread; one acquiring load.
    @inline(__always)
    public static var version: UInt64 { publishedVersion.load(ordering: .acquiring) }

    /// Replaces `published.pool`'s snapshot (the scraper, on the main thread).
    public static func publish(_ published: PublishedEndpointPool) {
        pools.withLock { $0[published.pool] = published }
        publishedVersion.add(1, ordering: .releasing)
    }

    /// Forgets `pool` (its pickers fall back to least-request).
    public static func withdraw(pool: String) {
        pools.withLock { _ = $0.removeValue(forKey: pool) }
        publishedVersion.add(1, ordering: .releasing)
    }

    /// The current snapshot of `pool`, if any (takes the mutex: call only when `version` moved).
    public static func current(pool: String) -> PublishedEndpointPool? {
        pools.withLock { $0[pool] }
    }
}
