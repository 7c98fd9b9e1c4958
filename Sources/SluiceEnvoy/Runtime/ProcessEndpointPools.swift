// The scrape list: which pools' endpoints the background worker scrapes. Each endpoint-picker
// cluster config (`lb_config_new`, main thread) registers its pool's `endpoints` here and
// withdraws them when Envoy destroys the config, so the list follows CDS: a cluster added, changed
// or removed by sluiced changes what is scraped without restarting Envoy (the bootstrap
// extension's own config is fixed at start). The worker reads the list on its timer.
//
// Several cluster configs may name one pool (a CDS update builds the new config before the old one
// goes; tests route one pool through two clusters): the newest registration's list is the pool's.

internal import SluiceCore
import Synchronization

/// What one picker cluster config registered.
final class EndpointPoolRegistration: Sendable {
    let id: UInt64
    let pool: String
    let endpoints: [String]
    let metricsPath: String
    /// For the admin page: the session-affinity header, if any.
    let sessionHeader: String?
    /// For the admin page: the cluster config's scorer (staleness limit, weights) and its workers'
    /// prefix-index fill.
    let scorer: EndpointScorer
    let workers: PickerWorkerGauges

    init(
        id: UInt64, pool: String, endpoints: [String], metricsPath: String, sessionHeader: String?, scorer: EndpointScorer,
        workers: PickerWorkerGauges
    ) {
        self.sessionHeader = sessionHeader
        self.id = id
        self.pool = pool
        self.endpoints = endpoints
        self.metricsPath = metricsPath
        self.scorer = scorer
        self.workers = workers
    }
}

/// The per-worker figures of one picker cluster config that the main thread may read: each
/// worker stores its own (relaxed atomics, one store per scored pick), the admin page sums them.
final class PickerWorkerGauges: Sendable {
    final class Worker: Sendable {
        /// Slots in use of the config's shared prefix index at this worker's last scored pick.
        let prefixEntries = Atomic<Int>(0)
        let scoredPicks = Atomic<Int>(0)
        /// Slots in use of the shared session table at this worker's last scored pick.
        let sessionEntries = Atomic<Int>(0)
        /// Scored picks of a known session, and those that stayed on its endpoint.
        let sessionPicks = Atomic<Int>(0)
        let sessionStays = Atomic<Int>(0)
    }

    private let workers = Mutex<[Worker]>([])

    /// A new worker's gauges (`lb_new`).
    func add() -> Worker {
        let worker = Worker()
        workers.withLock { $0.append(worker) }
        return worker
    }

    /// What the workers saw and did: the largest prefix-index and session-table fill any worker
    /// last saw (the tables are shared, so the largest is the latest), and the sums of the counts.
    func read() -> (prefixEntries: Int, scoredPicks: Int, sessionEntries: Int, sessionPicks: Int, sessionStays: Int) {
        let all = workers.withLock { $0 }
        return (
            all.map { $0.prefixEntries.load(ordering: .relaxed) }.max() ?? 0,
            all.reduce(0) { $0 + $1.scoredPicks.load(ordering: .relaxed) },
            all.map { $0.sessionEntries.load(ordering: .relaxed) }.max() ?? 0,
            all.reduce(0) { $0 + $1.sessionPicks.load(ordering: .relaxed) },
            all.reduce(0) { $0 + $1.sessionStays.load(ordering: .relaxed) }
        )
    }
}

enum ProcessEndpointPools {
    private static let registrations = Mutex<[EndpointPoolRegistration]>([])
    private static let nextID = Atomic<UInt64>(1)
    private static let changes = Atomic<UInt64>(0)

    /// Increases with every registration or withdrawal.
    static var version: UInt64 { changes.load(ordering: .acquiring) }

    static func register(
        pool: String, endpoints: [String], metricsPath: String, sessionHeader: String?, scorer: EndpointScorer,
        workers: PickerWorkerGauges
    ) -> EndpointPoolRegistration {
        let id = nextID.add(1, ordering: .relaxed).oldValue
        let registration = EndpointPoolRegistration(
            id: id, pool: pool, endpoints: endpoints, metricsPath: metricsPath, sessionHeader: sessionHeader, scorer: scorer,
            workers: workers)
        registrations.withLock { list in
            if let other = list.last(where: { $0.pool == pool }), other.endpoints != endpoints {
                EnvoyLog.warn(
                    "sluice: pool '\(pool)' is registered again with other endpoints (\(endpoints.count) against \(other.endpoints.count)); the newest list is scraped")
            }
            list.append(registration)
        }
        changes.add(1, ordering: .releasing)
        return registration
    }

    static func withdraw(_ registration: EndpointPoolRegistration) {
        registrations.withLock { list in list.removeAll { $0.id == registration.id } }
        changes.add(1, ordering: .releasing)
    }

    /// The newest registration of each pool, in order of the pools' first registration.
    static func current() -> [EndpointPoolRegistration] {
        registrations.withLock { list in
            var order: [String] = []
            var newest: [String: EndpointPoolRegistration] = [:]
            for registration in list {
                if newest[registration.pool] == nil { order.append(registration.pool) }
                newest[registration.pool] = registration
            }
            return order.compactMap { newest[$0] }
        }
    }

    /// Every registration of `pool` (for the admin page's per-cluster-config figures).
    static func all(pool: String) -> [EndpointPoolRegistration] {
        registrations.withLock { list in list.filter { $0.pool == pool } }
    }
}
