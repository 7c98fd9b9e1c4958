// The `sluice_endpoint_picker` load-balancing policy: which replica of a self-hosted model pool
// serves each request (issue 11). The SluiceEnvoy.docc article "Endpoint picker" describes it.
//
// Why the work is split between the filter and the load balancer:
// - The load balancer is where Envoy asks "which host?" for every attempt, retries included,
//   with the cluster's live host set: health checks and outlier ejection have already removed
//   bad hosts, and `should_select_another_host` carries the retry policy's host predicates
//   (`previous_hosts`). Picking here keeps all of that Envoy's. Picking in the filter instead
//   (`set_upstream_override_host`) would pin one address before Envoy knows whether the attempt
//   fails, so a retry would go back to the host that just failed, and the filter would have to
//   track health itself.
// - The load balancer never sees the body: the context offers headers and a hash key only. The
//   filter has the body (it routes on `model`), so it computes the prompt's prefix hashes and the
//   adapter once and hands them over in one header (EndpointHandOver.swift). The upstream filter
//   removes it, so it does not reach the model server; a retry therefore picks without prefix
//   affinity (scores on queue, KV cache and adapter, or least-request), which is the right
//   bias anyway once the preferred host has failed.
//
// One `EndpointPickerPolicy` per cluster config (main thread, shared read-only), one
// `EndpointPickerWorker` per Envoy worker thread (Envoy calls `lb_new` on each and then only
// that worker calls `choose_host` on it), so the per-worker state needs no locks.
//
// The prefix index is the exception: the workers of one cluster config share it, under a mutex
// held for one scored pick (score and record, about 2 µs). With an index per worker, each worker
// learnt a system prompt on a replica of its own choosing, so every prompt ended up cached on as
// many replicas as Envoy has workers: the routing benchmark's prefix-hit rate fell from 82 % (one
// shared view) to about 70 %, and p90 time to first token doubled. Two workers contend on it for
// a few percent of the time at thousands of picks a second.
internal import SluiceCore
import Synchronization

/// The cluster's policy: config, scorer and stats, shared by its workers.
final class EndpointPickerPolicy: Sendable {
    static let policyName = "sluice_endpoint_picker"

    let config: EndpointPickerConfig
    let scorer: EndpointScorer
    let stats: EndpointPickerStats
    /// What the workers report for the admin page.
    let workerGauges = PickerWorkerGauges()
    /// The prefix index this config's workers share (see the top of the file).
    let prefixes = Mutex(SharedPrefixIndex())
    /// The pool's scrape list while this config lives (none without `endpoints`).
    private let registration: EndpointPoolRegistration?

    private init(config: EndpointPickerConfig, scorer: EndpointScorer, stats: EndpointPickerStats) {
        self.config = config
        self.scorer = scorer
        self.stats = stats
        registration =
            config.endpoints.isEmpty
            ? nil
            : ProcessEndpointPools.register(
                pool: config.pool, endpoints: config.endpoints, metricsPath: config.metricsPath,
                sessionHeader: config.sessionHeader, scorer: scorer, workers: workerGauges)
    }

    deinit {
        // `lb_config_destroy`, main thread: the worker stops scraping a pool no config names.
        if let registration { ProcessEndpointPools.withdraw(registration) }
    }

    static func make(name: String, config bytes: [UInt8], stats: (EndpointPickerConfig) throws(MetricError) -> EndpointPickerStats)
        -> Result<EndpointPickerPolicy, ConfigLoadError>
    {
        guard name == policyName else {
            return .failure(ConfigLoadError("unknown lb_policy_name '\(name)'; this module implements: \(policyName)"))
        }
        let config: EndpointPickerConfig
        let scorer: EndpointScorer
        do {
            config = try EndpointPickerConfig.parse(bytes)
            scorer = try EndpointScorer(config: config.scoring)
        } catch let error as ConfigError {
            return .failure(ConfigLoadError("invalid lb_policy_config: \(error.message)"))
        } catch {
            return .failure(ConfigLoadError("invalid lb_policy_config: \(error)"))
        }
        do {
            return .success(EndpointPickerPolicy(config: config, scorer: scorer, stats: try stats(config)))
        } catch {
            return .failure(ConfigLoadError("could not define stats: \(error)"))
        }
    }
}

/// The shared prefix index and session table, and the pool positions they number endpoints by.
struct SharedPrefixIndex: ~Copyable {
    var addresses: [[UInt8]] = []
    /// Bumped whenever the index starts over for new positions.
    var epoch: UInt64 = 0
    var index: PrefixIndex?
    /// Where sessions went (only with a `session_header`); same positions as `index`.
    var sessions: SessionTable?

    /// Makes the index and the session table number endpoints as `addresses` does (new, empty
    /// ones when they changed); returns their epoch.
    mutating func sync(to addresses: [[UInt8]], config: EndpointPickerConfig) -> UInt64 {
        if index == nil || self.addresses != addresses {
            self.addresses = addresses
            epoch &+= 1
            index = try? PrefixIndex(
                endpointCount: max(1, min(addresses.count, PrefixIndex.maxEndpoints)), blocksPerEndpoint: config.prefixBlocksPerEndpoint)
            sessions = config.sessionHeader == nil ? nil : try? SessionTable(capacity: config.sessionEntries)
        }
        return epoch
    }
}

/// Why a pick was made the way it was (one Envoy counter each), and how often the hand-over
/// header was missing.
enum PickReason: Int, CaseIterable {
    case scored
    /// No snapshot of the pool was published (yet), or the host is not priority 0.
    case leastRequestNoSnapshot
    case leastRequestStaleMetrics
    /// A healthy host is not in the snapshot (the scraper does not know it yet).
    case leastRequestUnknownHost
    /// The hand-over header was malformed: nothing from it is trusted.
    case leastRequestBadHandOver
    case leastRequestNoCandidates
    case noHost
    /// Not a pick reason, counted beside one: a request reached the picker without the gateway
    /// filter's hand-over (a model not marked `endpoint_picking`, or a retry: the upstream
    /// filter removed the header from the request's headers during the first attempt).
    case handOverAbsent

    var statName: String {
        switch self {
        case .scored: "endpoint_picker_picks_scored"
        case .leastRequestNoSnapshot: "endpoint_picker_picks_least_request_no_snapshot"
        case .leastRequestStaleMetrics: "endpoint_picker_picks_least_request_stale_metrics"
        case .leastRequestUnknownHost: "endpoint_picker_picks_least_request_unknown_host"
        case .leastRequestBadHandOver: "endpoint_picker_picks_least_request_bad_handover"
        case .leastRequestNoCandidates: "endpoint_picker_picks_least_request_no_candidates"
        case .noHost: "endpoint_picker_no_host"
        case .handOverAbsent: "endpoint_picker_handover_absent"
        }
    }
}

/// The policy's counters (Envoy stats, per cluster config).
struct EndpointPickerStats: Sendable {
    let handle: LoadBalancerConfigHandle?
    let counters: [CounterID]

    init(_ handle: LoadBalancerConfigHandle) throws(MetricError) {
        self.handle = handle
        var counters: [CounterID] = []
        for reason in PickReason.allCases { counters.append(try handle.defineCounter(reason.statName)) }
        self.counters = counters
    }

    func count(_ reason: PickReason) {
        guard let handle, counters.indices.contains(reason.rawValue) else { return }
        handle.increment(counters[reason.rawValue])
    }
}

/// One worker's load balancer: its view of the published snapshot, its prefix index and its
/// picks since the snapshot. Used by one thread only.
final class EndpointPickerWorker {
    let policy: EndpointPickerPolicy
    private let clock: () -> Int64
    private let gauges: PickerWorkerGauges.Worker

    /// Rotates the start of every tie-break, so equal hosts share the load.
    private var tick: UInt64 = 0
    /// Bumped by `on_host_membership_update`: host indexes may have changed.
    private var membershipEpoch: UInt64 = 0

    private var seenVersion: UInt64 = .max
    private var pool: PublishedEndpointPool?
    /// The shared index's epoch this worker's `pool` positions match.
    private var prefixEpoch: UInt64 = .max
    private var picks = PicksSinceSnapshot()

    /// All-hosts index (priority 0) -> snapshot endpoint index or -1, valid for `mapKey`.
    private var hostToEndpoint: [Int] = []
    private var mapKey: (epoch: UInt64, version: UInt64, hosts: Int) = (.max, .max, -1)
    /// Healthy index -> all-hosts index, rebuilt per pick (health can change without a
    /// membership update).
    private var healthyToHost = [Int](repeating: 0, count: EndpointSet.capacity)

    init(policy: EndpointPickerPolicy, clock: @escaping () -> Int64 = WallClock.unixMillis) {
        self.policy = policy
        self.clock = clock
        gauges = policy.workerGauges.add()
    }

    func membershipChanged() { membershipEpoch &+= 1 }

    /// The (priority, healthy index) to use, or nil for no host.
    func choose(_ view: LoadBalancerView) -> (priority: UInt32, index: UInt32)? {
        tick &+= 1
        // Priority 0 first; a lower priority only when it has no healthy host (Envoy's own
        // failover order, without its overprovisioning factor: a pool is one tier in practice).
        var priority: UInt32 = 0
        var healthy = view.healthyCount(priority: 0)
        if healthy == 0 {
            let priorities = min(view.prioritySetSize, 128)
            var next = 1
            while next < priorities {
                healthy = view.healthyCount(priority: UInt32(next))
                if healthy > 0 {
                    priority = UInt32(next)
                    break
                }
                next &+= 1
            }
        }
        guard healthy > 0 else {
            policy.stats.count(.noHost)
            return nil
        }
        // A pool is at most 64 endpoints (EndpointSet); a larger host set is picked among its first 64.
        let considered = min(healthy, EndpointSet.capacity)
        let hosts = view.hostCount(priority: priority)
        mapHealthyToHosts(view, priority: priority, healthy: considered, allHealthy: healthy == hosts, hosts: hosts)

        var candidates = EndpointSet.first(considered)
        if view.hasContext {
            for index in 0..<considered where view.shouldAvoid(priority: priority, host: healthyToHost[index]) {
                candidates.remove(index)
            }
            // Every host avoided (more retries than hosts): any host beats none, as in Envoy's own
            // balancers, which give up avoiding after their selection attempts.
            if candidates.isEmpty { candidates = EndpointSet.first(considered) }
        }

        // A retry carries the session header too (the hand-over is gone by then), so it goes back
        // to the session's endpoint unless that is the host the retry avoids.
        let session = policy.config.sessionHeader.flatMap { view.sessionKey(header: $0) }
        let reason: PickReason
        switch view.handOver() {
        case .malformed:
            reason = .leastRequestBadHandOver
        case .absent:
            if view.hasContext { policy.stats.count(.handOverAbsent) }
            if let pick = scored(EndpointRequest(), session: session, view, priority: priority, hosts: hosts, candidates: candidates) {
                return pick
            }
            reason = lastFallback
        case .request(let request):
            if let pick = scored(request, session: session, view, priority: priority, hosts: hosts, candidates: candidates) {
                return pick
            }
            reason = lastFallback
        }
        policy.stats.count(reason)
        guard
            let index = LeastRequest.pick(
                count: considered, candidates: candidates, tieBreak: tick,
                active: { view.activeRequests(priority: priority, host: self.healthyToHost[$0]) })
        else {
            policy.stats.count(.noHost)
            return nil
        }
        return (priority, UInt32(index))
    }

    /// Why the last `scored` call gave up.
    private var lastFallback: PickReason = .leastRequestNoSnapshot

    /// A scored pick, or nil (with `lastFallback` set) when the snapshot cannot decide.
    private func scored(
        _ request: EndpointRequest, session: UInt64?, _ view: LoadBalancerView, priority: UInt32, hosts: Int, candidates: EndpointSet
    ) -> (priority: UInt32, index: UInt32)? {
        guard priority == 0, refreshPool(), let pool else {
            lastFallback = .leastRequestNoSnapshot
            return nil
        }
        mapHostsToEndpoints(view, pool: pool, hosts: hosts)
        var endpoints = EndpointSet(bits: 0)
        var endpointToHealthy = InlineArray<64, Int>(repeating: -1)
        for healthy in 0..<EndpointSet.capacity where candidates.contains(healthy) {
            let host = healthyToHost[healthy]
            let endpoint = host >= 0 && host < hostToEndpoint.count ? hostToEndpoint[host] : -1
            guard endpoint >= 0, endpoint < EndpointSet.capacity else {
                lastFallback = .leastRequestUnknownHost
                return nil
            }
            endpoints.bits |= 1 &<< UInt64(endpoint)
            endpointToHealthy[endpoint] = healthy
        }
        picks.align(with: pool.snapshot)
        let now = clock()
        let tieBreak = tick
        let config = policy.config
        let picksNow = picks
        var request = request
        // Score and learn under the shared index's lock, so the next pick on any worker sees
        // where this prefix (and session) went.
        let (pick, occupied, sessionsOccupied, epoch) = policy.prefixes.withLock {
            shared -> (EndpointPick, Int, Int, UInt64) in
            // Another worker may have moved the index to newer positions: follow this worker's
            // snapshot (the next publication brings every worker to the same positions).
            let epoch = shared.epoch == prefixEpoch ? prefixEpoch : shared.sync(to: pool.addresses, config: config)
            guard var index = shared.index else { return (.leastRequest(.noCandidates), 0, 0, epoch) }
            shared.index = nil  // unique while it is recorded into
            if let session { request.sessionEndpoint = shared.sessions?.endpoint(for: session) }
            let pick = policy.scorer.pick(
                request, snapshot: pool.snapshot, candidates: endpoints, prefixIndex: index, picksSinceSnapshot: picksNow,
                nowMillis: now, tieBreak: tieBreak)
            if case .endpoint(let endpoint, _, _) = pick, endpoint >= 0, endpoint < EndpointSet.capacity,
                endpointToHealthy[endpoint] >= 0
            {
                index.record(endpoint: endpoint, request.prefix)
                if let session { shared.sessions?.record(session, endpoint: endpoint) }
            }
            let occupied = index.occupied
            shared.index = index
            return (pick, occupied, shared.sessions?.occupied ?? 0, epoch)
        }
        prefixEpoch = epoch
        switch pick {
        case .endpoint(let endpoint, _, _):
            guard endpoint >= 0, endpoint < EndpointSet.capacity, endpointToHealthy[endpoint] >= 0 else {
                lastFallback = .leastRequestNoCandidates
                return nil
            }
            gauges.prefixEntries.store(occupied, ordering: .relaxed)
            gauges.sessionEntries.store(sessionsOccupied, ordering: .relaxed)
            if request.sessionEndpoint != nil { gauges.sessionPicks.add(1, ordering: .relaxed) }
            if request.sessionEndpoint == endpoint { gauges.sessionStays.add(1, ordering: .relaxed) }
            gauges.scoredPicks.add(1, ordering: .relaxed)
            picks.recordPick(endpoint)
            policy.stats.count(.scored)
            return (0, UInt32(endpointToHealthy[endpoint]))
        case .leastRequest(.staleMetrics):
            lastFallback = .leastRequestStaleMetrics
        case .leastRequest(.noCandidates):
            lastFallback = .leastRequestNoCandidates
        }
        return nil
    }

    /// Fetches a newer snapshot of the pool when one was published; true when one is in hand.
    private func refreshPool() -> Bool {
        let version = ProcessEndpointSnapshots.version
        if version != seenVersion {
            seenVersion = version
            let latest = ProcessEndpointSnapshots.current(pool: policy.config.pool)
            let sameEndpoints = latest?.addresses == pool?.addresses
            pool = latest
            if let latest, !sameEndpoints || prefixEpoch == .max {
                // Snapshot positions are the index's endpoint numbers: new positions, new index
                // (once per publication at most, not per pick).
                let config = policy.config
                prefixEpoch = policy.prefixes.withLock { $0.sync(to: latest.addresses, config: config) }
            }
        }
        return pool.map { !$0.addresses.isEmpty } ?? false
    }

    /// Healthy index -> all-hosts index. `healthyHosts()` is `hosts()` filtered in order, so
    /// with no unhealthy host it is the identity and otherwise one merge pass by address.
    private func mapHealthyToHosts(_ view: LoadBalancerView, priority: UInt32, healthy: Int, allHealthy: Bool, hosts: Int) {
        if allHealthy || hosts <= 0 {
            for index in 0..<healthy { healthyToHost[index] = index }
            return
        }
        var host = 0
        for index in 0..<healthy {
            var found = -1
            var probe = host
            while probe < hosts {
                if view.isSame(priority: priority, healthy: index, host: probe) {
                    found = probe
                    break
                }
                probe &+= 1
            }
            if found < 0 {
                // Out of order (not what Envoy does): search from the start.
                probe = 0
                while probe < hosts {
                    if view.isSame(priority: priority, healthy: index, host: probe) {
                        found = probe
                        break
                    }
                    probe &+= 1
                }
            }
            // -1 would index nothing; an unmatched healthy host keeps the same index, which
            // Envoy's range checks make harmless (a stat of 0, no avoidance).
            healthyToHost[index] = found >= 0 ? found : index
            if found >= 0 { host = found &+ 1 }
        }
    }

    /// All-hosts index -> snapshot endpoint, rebuilt when the hosts or the snapshot changed.
    private func mapHostsToEndpoints(_ view: LoadBalancerView, pool: PublishedEndpointPool, hosts: Int) {
        guard mapKey != (membershipEpoch, seenVersion, hosts) else { return }
        mapKey = (membershipEpoch, seenVersion, hosts)
        hostToEndpoint = [Int](repeating: -1, count: max(0, min(hosts, 4096)))
        for host in hostToEndpoint.indices {
            for (endpoint, address) in pool.addresses.enumerated()
            where view.hostAddress(priority: 0, host: host, equals: address) {
                hostToEndpoint[host] = endpoint
                break
            }
        }
    }
}
