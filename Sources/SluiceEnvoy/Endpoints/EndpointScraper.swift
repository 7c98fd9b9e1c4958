// The background worker's model-server metrics scraper (issue 11): on the worker's timer it
// scrapes `/metrics` of every endpoint of every picker pool, one callout in flight per endpoint,
// and publishes each pool's `EndpointSnapshot` into `ProcessEndpointSnapshots`, where the picker's
// load balancers read it. Main thread only (timer, callouts, admin page).
//
// Where the scrape list comes from: the picker cluster's own `lb_policy_config` (`endpoints`),
// registered in `ProcessEndpointPools` while the cluster config lives. Not the worker's config,
// which Envoy reads once at start while sluiced changes pools over CDS; and not the cluster's host
// set, which only the load balancers see (per worker thread, inside their hooks), so the main
// thread would learn it second-hand and only once traffic flowed. sluiced renders the list and the
// cluster's endpoints from the same pool, and a host the list lacks makes the picker fall back to
// least-request (`leastRequestUnknownHost`), so a divergence costs scoring, never a request.
//
// How a callout reaches one endpoint: Envoy's callouts name a cluster, not a host, so the scrapes
// go through an ORIGINAL_DST cluster (`endpoint_metrics.cluster`, rendered by sluiced) that
// connects to the address in `x-envoy-original-dst-host`. The picker cluster itself cannot take
// them: its load balancer would pick the host.
//
// When a pool is published: once per round, when no scrape of the pool is in flight any more and
// some endpoint's state changed. Publishing per answer would start the picker's
// picks-since-snapshot count over while other endpoints' figures are still the old ones. A slow
// endpoint must not hold the others' figures back, though: on a tick, a pool whose last
// publication is two intervals old is published with whatever has arrived.
internal import SluiceCore

/// Stats of the scraper (under the extension's `metrics_namespace`, `sluice.`).
struct EndpointScrapeMetrics {
    let scrapesOK: CounterID
    let scrapesFailed: CounterID
    /// Endpoints whose last scrape failed (stale in the published snapshot).
    let failing: GaugeID

    init(_ handle: BootstrapConfigHandle) throws(MetricError) {
        scrapesOK = try handle.defineCounter("endpoint_scrapes_ok")
        scrapesFailed = try handle.defineCounter("endpoint_scrapes_failed")
        failing = try handle.defineGauge("endpoint_scrape_failing")
    }
}

final class EndpointScraper {
    static let adminPath = "/sluice/endpoints"
    /// The ORIGINAL_DST cluster's header naming the host to connect to.
    static let targetHeader = "x-envoy-original-dst-host"
    /// A scrape due this close to the timer's tick goes out on it (timers fire to the millisecond).
    static let dueSlackNanos: Int64 = 2_000_000

    private struct Pool {
        let registration: EndpointPoolRegistration
        var endpoints: [ScrapedEndpoint]
        var channels: [CalloutChannel]
        /// An endpoint's state changed since the last publication.
        var changed = false
        var generation: UInt64 = 0
        var publishedAtMillis: Int64?
    }

    let settings: EndpointScrapeSettings
    private let handle: BootstrapConfigHandle
    private let metrics: EndpointScrapeMetrics
    private let wallMillis: () -> Int64
    private let monotonicNanos: () -> Int64
    private var pools: [Pool] = []
    private var seenVersion: UInt64 = .max
    /// Callouts in flight: pool name and endpoint address (positions change with the list).
    private var inFlight: [UInt64: (pool: String, address: String)] = [:]
    private var generation: UInt64 = 0
    private var reported: (ok: Int, failed: Int) = (0, 0)
    private var totals: (ok: Int, failed: Int) = (0, 0)

    init(
        settings: EndpointScrapeSettings, handle: BootstrapConfigHandle, metrics: EndpointScrapeMetrics,
        wallMillis: @escaping () -> Int64, monotonicNanos: @escaping () -> Int64
    ) {
        self.settings = settings
        self.handle = handle
        self.metrics = metrics
        self.wallMillis = wallMillis
        self.monotonicNanos = monotonicNanos
    }

    /// Whether some pool is registered (the worker then ticks at the scrape interval).
    var hasWork: Bool {
        refresh()
        return !pools.isEmpty
    }

    /// Starts the scrapes that are due (timer).
    func tick() {
        refresh()
        let now = monotonicNanos() &+ Self.dueSlackNanos
        for poolIndex in pools.indices {
            for index in pools[poolIndex].endpoints.indices where pools[poolIndex].channels[index].isDue(nowNanos: now) {
                start(poolIndex, index)
            }
            let overdue = pools[poolIndex].publishedAtMillis.map { wallMillis() &- $0 >= 2 &* settings.intervalMillis } ?? true
            publishIfRoundDone(poolIndex, evenWithScrapesOut: overdue)
        }
        report()
    }

    /// Handles a callout's end; false when `id` is not a scrape.
    func calloutDone(id: UInt64, outcome: FleetCalloutOutcome) -> Bool {
        guard let target = inFlight.removeValue(forKey: id) else { return false }
        // The pool or endpoint may have left the list while the scrape was out: nothing to do.
        guard let poolIndex = pools.firstIndex(where: { $0.registration.pool == target.pool }),
            let index = pools[poolIndex].endpoints.firstIndex(where: { $0.address == target.address }),
            pools[poolIndex].channels[index].take(id)
        else { return true }
        let now = wallMillis()
        switch outcome {
        case .failed(let reason):
            fail(poolIndex, index, reason, now)
        case .answered(let status, let body):
            switch MetricsPage.read(status: status, body: body, maxBytes: settings.maxPageBytes) {
            case .success(let read):
                pools[poolIndex].endpoints[index].succeeded(read, atMillis: now)
                pools[poolIndex].channels[index].succeeded()
                totals.ok &+= 1
            case .failure(let error):
                fail(poolIndex, index, error.message, now)
            }
        }
        pools[poolIndex].changed = true
        publishIfRoundDone(poolIndex)
        report()
        return true
    }

    /// Withdraws every published pool (the worker goes away).
    func stop() {
        for pool in pools { ProcessEndpointSnapshots.withdraw(pool: pool.registration.pool) }
        pools = []
        inFlight = [:]
    }

    // MARK: - Helpers

    private func fail(_ poolIndex: Int, _ index: Int, _ reason: String, _ now: Int64) {
        let wasFailing = pools[poolIndex].endpoints[index].consecutiveFailures > 0
        pools[poolIndex].endpoints[index].failed(reason, atMillis: now)
        pools[poolIndex].channels[index].failed()
        totals.failed &+= 1
        if !wasFailing {
            EnvoyLog.warn(
                "sluice: metrics of \(pools[poolIndex].endpoints[index].address) (pool '\(pools[poolIndex].registration.pool)') not read: \(reason); the pool is picked by least-request until they are")
        }
    }

    private func start(_ poolIndex: Int, _ index: Int) {
        let address = pools[poolIndex].endpoints[index].address
        let path = pools[poolIndex].registration.metricsPath
        pools[poolIndex].channels[index].markStarted(nowNanos: monotonicNanos())
        let headers = CalloutChannel.headers(
            method: "GET", path: path, host: address, extra: [(Self.targetHeader, address), ("accept", "text/plain")])
        switch pools[poolIndex].channels[index].send(
            handle, cluster: settings.cluster, headers: headers, body: [], timeoutMillis: settings.timeoutMillis)
        {
        case .success(let id):
            inFlight[id] = (pools[poolIndex].registration.pool, address)
        case .failure(let error):
            // `send` counted the failure for the pacing; the endpoint state counts it here.
            let wasFailing = pools[poolIndex].endpoints[index].consecutiveFailures > 0
            pools[poolIndex].endpoints[index].failed("callout could not start (\(error))", atMillis: wallMillis())
            pools[poolIndex].changed = true
            totals.failed &+= 1
            if !wasFailing {
                EnvoyLog.warn("sluice: cannot scrape \(address): callout through cluster '\(settings.cluster)' could not start (\(error))")
            }
        }
    }

    /// Publishes the pool when something changed and none of its scrapes is out (or, when
    /// `evenWithScrapesOut`, whatever is out).
    private func publishIfRoundDone(_ poolIndex: Int, evenWithScrapesOut: Bool = false) {
        guard pools[poolIndex].changed,
            evenWithScrapesOut || !pools[poolIndex].channels.contains(where: { $0.calloutID != nil })
        else { return }
        generation &+= 1
        let pool = pools[poolIndex]
        let snapshot = EndpointSnapshot(endpoints: pool.endpoints.map(\.snapshotState), generation: generation)
        ProcessEndpointSnapshots.publish(
            PublishedEndpointPool(pool: pool.registration.pool, addresses: pool.endpoints.map(\.address), snapshot: snapshot))
        pools[poolIndex].changed = false
        pools[poolIndex].generation = generation
        pools[poolIndex].publishedAtMillis = wallMillis()
    }

    /// Follows the registered pools: endpoints that stay keep their state and pacing.
    private func refresh() {
        let version = ProcessEndpointPools.version
        guard version != seenVersion else { return }
        seenVersion = version
        let registered = ProcessEndpointPools.current()
        var next: [Pool] = []
        for registration in registered {
            let old = pools.first { $0.registration.pool == registration.pool }
            var endpoints: [ScrapedEndpoint] = []
            var channels: [CalloutChannel] = []
            for address in registration.endpoints.prefix(EndpointSet.capacity) {
                if let old, let at = old.endpoints.firstIndex(where: { $0.address == address }) {
                    endpoints.append(old.endpoints[at])
                    channels.append(old.channels[at])
                } else {
                    endpoints.append(ScrapedEndpoint(address: address))
                    channels.append(CalloutChannel(intervalMillis: settings.intervalMillis, maxBackoffMillis: settings.maxBackoffMillis))
                }
            }
            var pool = Pool(registration: registration, endpoints: endpoints, channels: channels)
            pool.changed = true  // new positions: publish them
            pool.generation = old?.generation ?? 0
            pool.publishedAtMillis = old?.publishedAtMillis
            next.append(pool)
        }
        for pool in pools where !registered.contains(where: { $0.pool == pool.registration.pool }) {
            ProcessEndpointSnapshots.withdraw(pool: pool.registration.pool)
            EnvoyLog.info("sluice: pool '\(pool.registration.pool)' is no longer scraped")
        }
        for pool in next where !pools.contains(where: { $0.registration.pool == pool.registration.pool }) {
            EnvoyLog.info(
                "sluice: scraping \(pool.endpoints.count) endpoints of pool '\(pool.registration.pool)' every \(settings.intervalMillis) ms through cluster '\(settings.cluster)'")
        }
        pools = next
    }

    private func report() {
        handle.increment(metrics.scrapesOK, by: UInt64(max(0, totals.ok &- reported.ok)))
        handle.increment(metrics.scrapesFailed, by: UInt64(max(0, totals.failed &- reported.failed)))
        reported = totals
        var failing = 0
        for pool in pools { failing &+= pool.endpoints.reduce(0) { $0 + ($1.isFailing ? 1 : 0) } }
        handle.set(metrics.failing, UInt64(failing))
    }

    // MARK: - Admin page

    /// `/sluice/endpoints`: per pool and endpoint the last figures, their age, whether the
    /// snapshot has them stale, the endpoint's score components, and the prefix indexes' fill.
    func adminPage() -> (status: UInt32, body: [UInt8]) {
        refresh()
        let now = wallMillis()
        var writer = JSONWriter(reservingCapacity: 1024)
        writer.beginObject()
        writer.key("cluster")
        writer.string(settings.cluster)
        writer.key("interval_ms")
        writer.int(settings.intervalMillis)
        writer.key("timeout_ms")
        writer.int(settings.timeoutMillis)
        writer.key("scrapes_ok")
        writer.int(totals.ok)
        writer.key("scrapes_failed")
        writer.int(totals.failed)
        writer.key("pools")
        writer.beginArray()
        for pool in pools { write(pool, now: now, to: &writer) }
        writer.endArray()
        writer.endObject()
        writer.bytes.append(UInt8(ascii: "\n"))
        return (200, writer.bytes)
    }

    private func write(_ pool: Pool, now: Int64, to writer: inout JSONWriter) {
        let scorer = pool.registration.scorer
        let staleAfter = scorer.config.staleAfterMillis
        writer.beginObject()
        writer.key("pool")
        writer.string(pool.registration.pool)
        writer.key("metrics_path")
        writer.string(pool.registration.metricsPath)
        writer.key("stale_after_ms")
        writer.int(staleAfter)
        writer.key("generation")
        writer.uint(pool.generation)
        writer.key("published_age_ms")
        if let at = pool.publishedAtMillis { writer.int(max(0, now &- at)) } else { writer.null() }
        writer.key("weights")
        writer.beginObject()
        writer.key("prefix")
        writer.double(scorer.config.prefixWeight)
        writer.key("queue")
        writer.double(scorer.config.queueWeight)
        writer.key("kv_cache")
        writer.double(scorer.config.kvCacheWeight)
        writer.key("lora")
        writer.double(scorer.config.loraWeight)
        writer.key("session")
        writer.double(scorer.config.sessionWeight)
        writer.key("saturation_queue")
        writer.int(scorer.config.saturationQueue)
        writer.key("saturation_kv_cache")
        writer.double(scorer.config.saturationKVCache)
        writer.endObject()
        // Each cluster config of the pool has its own prefix index, shared by its workers; each
        // worker stores the fill it saw at its last scored pick, so the largest is the latest.
        var entries: [Int] = []
        var sessionEntries: [Int] = []
        var scored = 0
        var sessionPicks = 0
        var sessionStays = 0
        for registration in ProcessEndpointPools.all(pool: pool.registration.pool) {
            let read = registration.workers.read()
            entries.append(read.prefixEntries)
            sessionEntries.append(read.sessionEntries)
            scored &+= read.scoredPicks
            sessionPicks &+= read.sessionPicks
            sessionStays &+= read.sessionStays
        }
        writer.key("prefix_index_entries")
        writer.beginArray()
        for count in entries { writer.int(count) }
        writer.endArray()
        writer.key("scored_picks")
        writer.int(scored)
        // Session affinity: the header, the sessions each config's table holds, the scored picks
        // of a known session and how many of them stayed on its endpoint.
        writer.key("session_header")
        if let header = pool.registration.sessionHeader { writer.string(header) } else { writer.null() }
        writer.key("session_entries")
        writer.beginArray()
        for count in sessionEntries { writer.int(count) }
        writer.endArray()
        writer.key("session_picks")
        writer.int(sessionPicks)
        writer.key("session_stays")
        writer.int(sessionStays)
        writer.key("endpoints")
        writer.beginArray()
        for (index, endpoint) in pool.endpoints.enumerated() {
            writer.beginObject()
            writer.key("address")
            writer.string(endpoint.address)
            let state = endpoint.snapshotState
            let age = endpoint.lastGoodAtMillis.map { max(0, now &- $0) }
            writer.key("stale")
            writer.bool(state.readAtMillis == nil || (age ?? .max) > staleAfter)
            writer.key("age_ms")
            if let age { writer.int(age) } else { writer.null() }
            writer.key("in_flight")
            writer.bool(pool.channels.indices.contains(index) && pool.channels[index].calloutID != nil)
            writer.key("scrapes_ok")
            writer.int(endpoint.scrapesOK)
            writer.key("scrapes_failed")
            writer.int(endpoint.scrapesFailed)
            writer.key("consecutive_failures")
            writer.int(endpoint.consecutiveFailures)
            writer.key("last_error")
            if let error = endpoint.lastError { writer.string(error) } else { writer.null() }
            writer.key("last_error_age_ms")
            if let at = endpoint.lastErrorAtMillis { writer.int(max(0, now &- at)) } else { writer.null() }
            writer.key("metrics")
            if let metrics = endpoint.lastGood {
                Self.write(metrics, to: &writer)
                writer.key("score")
                let components = scorer.components(metrics)
                writer.beginObject()
                writer.key("saturated")
                writer.bool(components.saturated)
                writer.key("queue_room")
                writer.double(components.queueRoom)
                writer.key("kv_cache_free")
                writer.double(components.kvCacheFree)
                writer.key("total_without_prefix")
                writer.double(components.total)
                writer.endObject()
            } else {
                writer.null()
                writer.key("score")
                writer.null()
            }
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
    }

    private static func write(_ metrics: ModelServerMetrics, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("waiting")
        if let value = metrics.waitingRequests { writer.int(value) } else { writer.null() }
        writer.key("running")
        if let value = metrics.runningRequests { writer.int(value) } else { writer.null() }
        writer.key("kv_cache_usage")
        if let value = metrics.kvCacheUsage { writer.double(value) } else { writer.null() }
        writer.key("lora")
        if let lora = metrics.lora {
            writer.beginObject()
            writer.key("max_lora")
            if let value = lora.maxLoRA { writer.int(value) } else { writer.null() }
            writer.key("running_adapters")
            writer.int(lora.runningCount)
            writer.key("waiting_adapters")
            writer.int(lora.waitingCount)
            writer.endObject()
        } else {
            writer.null()
        }
        writer.key("ignored_samples")
        writer.int(metrics.ignoredSamples)
        writer.endObject()
    }
}
