// The module's background worker (the `sluice_fleet` bootstrap extension): it publishes the
// process's usage-record queue for the filters, drains it on a main-thread timer into a
// `UsageShipper` (SluiceCore), and sends the batches the shipper makes to sluiced with Envoy's
// HTTP callouts. With `leases` on, it also publishes the process's `LeaseBook` and trades lease
// requests with sluiced (`LeaseCourier`). It also scrapes the endpoint-picker pools' model servers
// (`EndpointScraper`) and serves their state on `/sluice/endpoints`. All of it runs on Envoy's main thread; the filters only
// ever push onto the lock-free queue and admit against their slots.
internal import SluiceCore

/// Stats of the worker (under the bootstrap extension's `metrics_namespace`, `sluice.` in the
/// rendered bootstrap).
struct FleetMetrics {
    /// Records sluiced accepted or already had.
    let sent: CounterID
    /// Batches that failed and were kept for a retry.
    let retried: CounterID
    /// Records lost before sluiced had them: buffer bound, full hand-over queue, shutdown timeout.
    let dropped: CounterID
    /// Records sluiced refused.
    let rejected: CounterID
    /// Records held now (buffer, in flight included).
    let buffered: GaugeID

    init(_ handle: BootstrapConfigHandle) throws(MetricError) {
        sent = try handle.defineCounter("fleet_usage_sent")
        retried = try handle.defineCounter("fleet_usage_retried")
        dropped = try handle.defineCounter("fleet_usage_dropped")
        rejected = try handle.defineCounter("fleet_usage_rejected")
        buffered = try handle.defineGauge("fleet_usage_buffered")
    }
}

final class FleetWorker {
    /// The bootstrap extension name Sluice's worker answers to (`extension_name`).
    static let extensionName = "sluice_fleet"
    /// The admin page of the worker's state.
    static let adminPath = "/sluice/fleet"
    /// How often the timer drains the queue at most (a batch is due by count between flushes).
    static let maxTickMillis: Int64 = 100
    /// Records moved from the queue to the buffer per tick at most (bounds one tick's work).
    static let maxDrainPerTick = 50_000

    let handle: BootstrapConfigHandle
    let config: FleetWorkerConfig
    let queue: BoundedMPSCQueue<FleetUsageRecord>
    private let metrics: FleetMetrics
    private var shipper: UsageShipper
    /// What the Envoy counters were last told (they take increments).
    private var reported = UsageShipperStats()
    private var timer: BootstrapTimer?
    private var calloutID: UInt64?
    private var token: String?
    private var shutdown: ShutdownCompletion?
    private var shutdownDeadlineMillis: Int64 = 0
    private let clock: () -> Int64
    /// The lease half; nil unless the config turns leases on.
    let leases: LeaseCourier?
    /// The picker pools' metrics scraper (idle until a picker cluster registers endpoints).
    let scraper: EndpointScraper

    /// With leases, how soon a slot without a lease (a scope's first requests) or with a short
    /// slice gets its request out: the timer's period.
    static let leaseTickMillis: Int64 = 20

    var tickMillis: Int64 {
        let fleet = min(
            config.flushIntervalMillis, config.leases.map { min($0.intervalMillis, Self.leaseTickMillis) } ?? Self.maxTickMillis)
        return scraper.hasWork ? min(fleet, config.endpointMetrics.intervalMillis) : fleet
    }

    private init(
        handle: BootstrapConfigHandle, config: FleetWorkerConfig, metrics: FleetMetrics, leases: LeaseCourier?,
        scraper: EndpointScraper, clock: @escaping () -> Int64
    ) {
        self.handle = handle
        self.config = config
        self.metrics = metrics
        self.leases = leases
        self.scraper = scraper
        self.clock = clock
        // The hand-over queue holds what workers push between two ticks; its slots cost memory
        // even when empty, so it is sized to the buffer bound, no larger than 2^16.
        queue = BoundedMPSCQueue(minimumCapacity: min(config.bufferMaxRecords, 1 << 16))
        var seed = SystemRandomNumberGenerator()
        shipper = UsageShipper(config: config, nowMillis: clock(), seed: seed.next())
    }

    /// Builds the worker for `extension_config` (main thread, config_new). The queue is published
    /// to the filters at once: records of requests served before the first tick wait in it.
    static func make(
        name: String, config bytes: [UInt8], handle: BootstrapConfigHandle, clock: @escaping () -> Int64 = WallClock.unixMillis
    ) -> Result<FleetWorker, ConfigLoadError> {
        guard name == extensionName else {
            return .failure(ConfigLoadError("unknown extension_name '\(name)'; this module implements: \(extensionName)"))
        }
        let config: FleetWorkerConfig
        do {
            config = try FleetWorkerConfig.parse(bytes)
        } catch {
            return .failure(ConfigLoadError("invalid extension_config: \(error.message)"))
        }
        let metrics: FleetMetrics
        do {
            metrics = try FleetMetrics(handle)
        } catch {
            return .failure(ConfigLoadError("could not define stats: \(error)"))
        }
        var leases: LeaseCourier?
        if let settings = config.leases {
            let leaseMetrics: LeaseMetrics
            do {
                leaseMetrics = try LeaseMetrics(handle)
            } catch {
                return .failure(ConfigLoadError("could not define lease stats: \(error)"))
            }
            // A boot id new at every start: a restarted Envoy is a new holder, and its
            // predecessor's slices expire on their own at sluiced.
            var random = SystemRandomNumberGenerator()
            let boot = "\(clock())-\(random.next() % 1_000_000_000)"
            let book = LeaseBook(envoy: config.envoy, boot: boot, settings: settings.bookSettings)
            leases = LeaseCourier(
                book: book, settings: settings, metrics: leaseMetrics, handle: handle, cluster: config.cluster,
                timeoutMillis: config.timeoutMillis, monotonicNanos: MonotonicClock.nanos)
            // Filter configs built from now on admit against the book's slots.
            ProcessLeaseBook.publish(book)
        }
        let scrapeMetrics: EndpointScrapeMetrics
        do {
            scrapeMetrics = try EndpointScrapeMetrics(handle)
        } catch {
            return .failure(ConfigLoadError("could not define endpoint scrape stats: \(error)"))
        }
        let scraper = EndpointScraper(
            settings: config.endpointMetrics, handle: handle, metrics: scrapeMetrics, wallMillis: clock,
            monotonicNanos: MonotonicClock.nanos)
        let worker = FleetWorker(handle: handle, config: config, metrics: metrics, leases: leases, scraper: scraper, clock: clock)
        ProcessUsageQueue.publish(worker.queue)
        EnvoyLog.info(
            "sluice: fleet worker for '\(config.envoy)': usage records to cluster '\(config.cluster)' every \(config.flushIntervalMillis) ms or \(config.batchMaxRecords) records, holding at most \(config.bufferMaxRecords)"
                + (config.leases.map { "; quota leases every \($0.intervalMillis) ms" } ?? "")
        )
        return .success(worker)
    }

    // MARK: - Lifecycle (main thread)

    /// The server is up: start the timer, serve the admin page.
    func serverInitialized() {
        if !handle.registerAdminHandler(Self.adminPath, help: "Sluice fleet worker: usage records buffered and sent to sluiced") {
            EnvoyLog.warn("sluice: could not register the admin page \(Self.adminPath)")
        }
        if !handle.registerAdminHandler(
            EndpointScraper.adminPath, help: "Sluice endpoint picker: model-server metrics, staleness and scores per pool endpoint")
        {
            EnvoyLog.warn("sluice: could not register the admin page \(EndpointScraper.adminPath)")
        }
        timer = handle.makeTimer()
        if timer == nil { EnvoyLog.error("sluice: Envoy made no timer for the fleet worker; usage records will not be sent") }
        timer?.enable(afterMilliseconds: UInt64(tickMillis))
    }

    func drainStarted() {
        let now = clock()
        collect()
        shipper.startDraining(nowMillis: now)
        EnvoyLog.info("sluice: Envoy drains; sending the \(shipper.bufferedCount) usage records held")
        sendIfDue(now)
        report()
    }

    /// Envoy shuts down: flush what is held, then call `completion` — when everything is
    /// delivered, or after `timeout_ms` at most (what is left is counted as dropped).
    func shutdown(_ completion: ShutdownCompletion) {
        let now = clock()
        collect()
        shipper.startDraining(nowMillis: now)
        shutdown = completion
        shutdownDeadlineMillis = now + config.timeoutMillis
        sendIfDue(now)
        // The last lease request reports the spend and gives every slice back to the fleet.
        leases?.startDraining()
        leases?.tick(nowMillis: now, token: { self.currentToken() })
        finishShutdownIfDone(now)
        report()
    }

    /// The config goes away: no more timers; filters stop pushing.
    func destroy() {
        timer?.delete()
        timer = nil
        ProcessUsageQueue.withdraw()
        if leases != nil { ProcessLeaseBook.withdraw() }
        scraper.stop()
        // Envoy waits for the shutdown callback before this; if it did not, call it now so
        // Envoy is never left waiting.
        shutdown?.finish()
    }

    // MARK: - Events (main thread)

    func timerFired() {
        let now = clock()
        collect()
        sendIfDue(now)
        if shutdown?.finished != true {
            leases?.tick(nowMillis: now, token: { self.currentToken() })
            scraper.tick()
        }
        finishShutdownIfDone(now)
        report()
        if !(shutdown?.finished ?? false) { timer?.enable(afterMilliseconds: UInt64(tickMillis)) }
    }

    func calloutDone(id: UInt64, outcome: FleetCalloutOutcome) {
        if scraper.calloutDone(id: id, outcome: outcome) { return }
        if let leases, id == leases.calloutID {
            let now = clock()
            if leases.calloutDone(id: id, outcome: outcome, nowMillis: now) { token = nil }
            finishShutdownIfDone(now)
            report()
            return
        }
        guard id == calloutID else { return }
        calloutID = nil
        // After the shutdown flush gave up, what was in flight is already counted as dropped.
        if shutdown?.finished == true { return }
        let now = clock()
        let result = shipper.batchFinished(outcome, nowMillis: now)
        switch result {
        case .delivered(let accepted, let duplicates, let rejected):
            EnvoyLog.debug("sluice: sluiced took \(accepted) usage records (\(duplicates) duplicates, \(rejected.count) rejected)")
        case .willRetry(let reason, let retryAt):
            EnvoyLog.warn("sluice: usage batch not delivered (\(reason)); retrying in \(max(0, retryAt - now)) ms")
        case .droppedBatch(let reason, let records):
            EnvoyLog.error("sluice: \(records) usage records dropped: \(reason)")
        }
        if shipper.tokenRefused { token = nil }
        collect()
        sendIfDue(now)
        finishShutdownIfDone(now)
        report()
    }

    /// The admin page under `path`: the scraper's, or the worker's state as JSON.
    func adminPage(path: String) -> (status: UInt32, body: [UInt8]) {
        if path.hasPrefix(EndpointScraper.adminPath) { return scraper.adminPage() }
        collect()
        report()
        let stats = shipper.stats
        var writer = JSONWriter(reservingCapacity: 512)
        writer.beginObject()
        writer.key("envoy")
        writer.string(config.envoy)
        writer.key("cluster")
        writer.string(config.cluster)
        writer.key("buffered")
        writer.int(shipper.bufferedCount)
        writer.key("buffer_max_records")
        writer.int(config.bufferMaxRecords)
        writer.key("in_flight")
        writer.int(shipper.inFlight ?? 0)
        writer.key("draining")
        writer.bool(shipper.draining)
        writer.key("sent")
        writer.int(stats.sent)
        writer.key("retried")
        writer.int(stats.retried)
        writer.key("dropped")
        writer.int(stats.dropped)
        writer.key("rejected")
        writer.int(stats.rejected)
        writer.key("last_success_ms")
        if let value = stats.lastSuccessMillis { writer.int(value) } else { writer.null() }
        writer.key("last_error")
        if let value = stats.lastError { writer.string(value) } else { writer.null() }
        writer.key("last_error_ms")
        if let value = stats.lastErrorMillis { writer.int(value) } else { writer.null() }
        writer.key("leases")
        if let leases { leases.write(to: &writer, nowMillis: clock()) } else { writer.null() }
        writer.endObject()
        writer.bytes.append(UInt8(ascii: "\n"))
        return (200, writer.bytes)
    }

    // MARK: - Helpers

    /// Moves what the filters pushed into the shipper's buffer.
    private func collect() {
        queue.drain(max: Self.maxDrainPerTick) { record in shipper.accept(record) }
        let refused = queue.takeRefusedCount()
        if refused > 0 {
            shipper.countDropped(refused)
            EnvoyLog.error("sluice: \(refused) usage records dropped: the hand-over queue was full")
        }
    }

    private func sendIfDue(_ now: Int64) {
        guard calloutID == nil, shutdown?.finished != true else { return }
        guard let body = shipper.nextBatch(nowMillis: now) else { return }
        guard let token = currentToken() else {
            _ = shipper.batchFinished(.failed("fleet token unavailable"), nowMillis: now)
            return
        }
        var headers = ModuleHeaderList()
        headers.reserveCapacity(entries: 5, bytes: 96 + token.utf8.count + config.cluster.utf8.count)
        headers.append(name: ":method", value: "POST")
        headers.append(name: ":path", value: "/v1/fleet/usage")
        headers.append(name: "host", value: config.cluster)
        headers.append(name: "content-type", value: "application/json")
        headers.append(name: "authorization", value: "Bearer " + token)
        switch handle.startCallout(
            cluster: config.cluster, headers: headers, body: body, timeoutMilliseconds: UInt64(config.timeoutMillis))
        {
        case .success(let id):
            calloutID = id
        case .failure(let error):
            let result = shipper.batchFinished(.failed("callout could not start (\(error))"), nowMillis: now)
            if case .willRetry(let reason, _) = result { EnvoyLog.warn("sluice: usage batch not sent: \(reason)") }
        }
    }

    /// The fleet token, read from its file when first needed and after sluiced refused it.
    func currentToken() -> String? {
        if let token { return token }
        switch TokenFile.read(config.tokenFile) {
        case .success(let read):
            token = read
            return read
        case .failure(let error):
            EnvoyLog.warn("sluice: fleet token unavailable: \(error.message)")
            return nil
        }
    }

    private func finishShutdownIfDone(_ now: Int64) {
        guard let shutdown, !shutdown.finished else { return }
        if shipper.bufferedCount == 0 && queue.approximateCount == 0 && (leases?.returnedAll ?? true) {
            EnvoyLog.info("sluice: fleet worker flushed every usage record\(leases == nil ? "" : " and returned its lease slices"); shutdown may proceed")
            shutdown.finish()
        } else if now >= shutdownDeadlineMillis {
            let left = shipper.abandon()
            report()
            if left > 0 {
                EnvoyLog.error("sluice: \(left) usage records dropped: sluiced did not take them within \(config.timeoutMillis) ms of shutdown")
            }
            if leases?.returnedAll == false {
                // Not lost: sluiced takes the slices back when their lease expires (counted in R).
                EnvoyLog.warn("sluice: the lease slices were not returned within \(config.timeoutMillis) ms of shutdown; sluiced reclaims them at their expiry")
            }
            shutdown.finish()
        }
    }

    /// Brings Envoy's counters and gauge up to the shipper's stats.
    private func report() {
        let stats = shipper.stats
        handle.increment(metrics.sent, by: UInt64(max(0, stats.sent - reported.sent)))
        handle.increment(metrics.retried, by: UInt64(max(0, stats.retried - reported.retried)))
        handle.increment(metrics.dropped, by: UInt64(max(0, stats.dropped - reported.dropped)))
        handle.increment(metrics.rejected, by: UInt64(max(0, stats.rejected - reported.rejected)))
        handle.set(metrics.buffered, UInt64(shipper.bufferedCount))
        reported = stats
        leases?.report()
    }
}
