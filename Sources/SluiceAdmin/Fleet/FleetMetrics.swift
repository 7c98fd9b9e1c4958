// sluiced's Prometheus metrics of the whole fleet, from the usage records every Envoy sends:
// OpenTelemetry's GenAI metrics in Prometheus form (token usage, request duration, time to first
// token, with OTel's recommended bucket boundaries), requests and cost by key, team, model,
// backend and status class, and sluiced's own health (records received, duplicated, rejected;
// ADS clients connected).
//
// Each record is counted once: only records the store accepted as new are observed, so a batch
// the sender retries (after a timeout that hid a success) adds nothing. The counters live in
// sluiced's memory and start at zero when it starts, as Prometheus counters do (`rate()` and
// `increase()` handle the reset); the database is the lossless account, read through the usage API.
// Not seeding them from the database keeps replicas additive: each record is stored (and counted)
// by one sluiced only, so the sum over replicas on one PostgreSQL database is the fleet's.
//
// Label values come from the records (consumer, team, model names): each distinct combination is
// one series. Models the gateway does not route are refused before they cost anything, but their
// records still arrive; keep that in mind for cardinality.
import Prometheus
public import SluiceCore
import Synchronization

/// The fleet's metrics and sluiced's health, in one Prometheus registry.
public final class FleetMetrics: Sendable {
    /// OTel's recommended boundaries for `gen_ai.client.token.usage`.
    public static let tokenBuckets: [Double] = [
        1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1_048_576, 4_194_304, 16_777_216, 67_108_864,
    ]
    /// OTel's recommended boundaries for `gen_ai.server.request.duration` (seconds).
    public static let durationBuckets: [Double] = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ]
    /// OTel's recommended boundaries for `gen_ai.server.time_to_first_token` (seconds).
    public static let timeToFirstTokenBuckets: [Double] = [
        0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    ]

    private let registry = PrometheusCollectorRegistry()
    private let received: Counter
    private let duplicated: Counter
    private let rejected: Counter
    private let adsClients: Gauge
    private let adsClientCount: @Sendable () -> Int
    private let leasesOutstanding: Gauge
    private let leaseHolders: Gauge
    /// The lease ledger, and its totals as of the last scrape (counters advance by the difference).
    private let leases = Mutex<(service: LeaseService?, last: LeaseLedgerTotals)>((nil, LeaseLedgerTotals()))

    /// - Parameter adsClients: How many Envoy ADS streams are open now, read at each scrape.
    public init(adsClients: @escaping @Sendable () -> Int = { 0 }) {
        adsClientCount = adsClients
        received = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_usage_records_received", unitName: "total",
                helpText: "Usage records stored, each counted once however often it was sent."))
        duplicated = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_usage_records_duplicated", unitName: "total",
                helpText: "Usage records received again with an id already stored (retried batches); not stored twice."))
        rejected = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_usage_records_rejected", unitName: "total",
                helpText: "Usage records refused as invalid (the sender drops them)."))
        self.adsClients = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_ads_clients", unitName: "connected",
                helpText: "Envoy ADS streams open on sluiced's xDS server."))
        leasesOutstanding = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_leases", unitName: "outstanding",
                helpText: "Quota lease slices Envoys hold now (one per Envoy, scope, dimension and window)."))
        leaseHolders = registry.makeGauge(
            descriptor: MetricNameDescriptor(
                metricName: "sluiced_lease_holders", unitName: "known",
                helpText: "Envoy processes (node id and boot) that have asked for leases since sluiced started."))
    }

    /// Reads lease gauges and counters from `service` at each scrape.
    public func attach(_ service: LeaseService) {
        leases.withLock { $0.service = service }
    }

    /// Brings the lease metrics up to the ledger's state (at each scrape).
    private func observeLeases() {
        guard let service = leases.withLock({ $0.service }) else { return }
        let (outstanding, holders, totals) = service.snapshot()
        leasesOutstanding.set(Int64(outstanding))
        leaseHolders.set(Int64(holders))
        let last = leases.withLock { state in
            defer { state.last = totals }
            return state.last
        }
        func advance(_ name: String, _ help: String, _ labels: [(String, String)], _ now: Int64, _ before: Int64) {
            let counter = registry.makeCounter(
                descriptor: MetricNameDescriptor(metricName: name, unitName: "total", helpText: help), labels: labels)
            if now > before { counter.increment(by: now - before) }
        }
        advance("sluiced_lease_requests", "Lease requests from Envoys (POST /v1/fleet/leases).", [], totals.requests, last.requests)
        advance(
            "sluiced_lease_replays", "Lease requests resent with a seq already applied (answers lost on the way).", [],
            totals.replays, last.replays)
        advance(
            "sluiced_lease_items_rejected", "Lease items refused as invalid or for a window sluiced does not keep.", [],
            totals.rejectedItems, last.rejectedItems)
        advance(
            "sluiced_lease_items_not_limited",
            "Lease items refused because sluiced's config does not limit the scope in that dimension (also in items_rejected).", [],
            totals.notLimitedItems, last.notLimitedItems)
        advance(
            "sluiced_lease_limit_mismatches",
            "Lease items whose Envoy stated a limit other than sluiced's config; granted against sluiced's.", [],
            totals.limitMismatches, last.limitMismatches)
        advance(
            "sluiced_leases_reclaimed", "Slices taken back from Envoys past their lease's expiry (dead or cut off).", [],
            totals.reclaimedLeases, last.reclaimedLeases)
        for dimension in LeaseDimension.allCases {
            let labels = [("dimension", dimension.rawValue)]
            let now = totals.units[dimension] ?? .init()
            let before = last.units[dimension] ?? .init()
            advance("sluiced_lease_granted_units", "Units granted to Envoys as slices, per leased dimension.", labels, now.granted, before.granted)
            advance("sluiced_lease_returned_units", "Units Envoys returned unused, per leased dimension.", labels, now.returned, before.returned)
            advance(
                "sluiced_lease_reclaimed_units", "Units of expired slices taken back, per leased dimension (the R of the overspend bound).",
                labels, now.reclaimed, before.reclaimed)
        }
    }

    /// Counts a batch: `records` are the ones stored now (new ids), `duplicates` and `rejected` the others.
    public func observe(stored records: some Sequence<FleetUsageRecord>, duplicates: Int, rejected: Int) {
        if duplicates > 0 { duplicated.increment(by: Int64(duplicates)) }
        if rejected > 0 { self.rejected.increment(by: Int64(rejected)) }
        // Sum the batch per series first: one registry lookup per series, not per record.
        var requests: [RequestSeries: (count: Int64, micros: Int64)] = [:]
        var genAI: [GenAISeries: [FleetUsageRecord]] = [:]
        var count: Int64 = 0
        for record in records {
            count += 1
            let series = RequestSeries(record)
            let sums = requests[series] ?? (0, 0)
            requests[series] = (sums.count + 1, sums.micros + record.costMicros)
            genAI[GenAISeries(model: record.model, provider: record.provider), default: []].append(record)
        }
        guard count > 0 else { return }
        received.increment(by: count)
        for (series, sums) in requests {
            let labels = series.labels
            registry.makeCounter(descriptor: Self.requestsDescriptor, labels: labels).increment(by: sums.count)
            if sums.micros > 0 {
                registry.makeCounter(descriptor: Self.costDescriptor, labels: labels)
                    .increment(by: Double(sums.micros) / 1_000_000)
            }
        }
        for (series, records) in genAI {
            let model = ("gen_ai_request_model", series.model)
            let provider = ("gen_ai_provider_name", series.provider)
            let input = registry.makeValueHistogram(
                descriptor: Self.tokenDescriptor, labels: [("gen_ai_token_type", "input"), model, provider],
                buckets: Self.tokenBuckets)
            let output = registry.makeValueHistogram(
                descriptor: Self.tokenDescriptor, labels: [("gen_ai_token_type", "output"), model, provider],
                buckets: Self.tokenBuckets)
            let duration = registry.makeValueHistogram(
                descriptor: Self.durationDescriptor, labels: [model, provider], buckets: Self.durationBuckets)
            let firstToken = registry.makeValueHistogram(
                descriptor: Self.timeToFirstTokenDescriptor, labels: [model, provider],
                buckets: Self.timeToFirstTokenBuckets)
            for record in records {
                // Token counts exist for answered requests; an error's zeros would only skew the
                // distribution towards the smallest bucket. A media record's counts are images,
                // characters or seconds, not tokens.
                if record.status < 400, record.unit == .tokens {
                    input.record(Double(record.inputTokens))
                    output.record(Double(record.outputTokens))
                }
                duration.record(Double(record.durationMillis) / 1000)
                if let ttft = record.ttftMillis { firstToken.record(Double(ttft) / 1000) }
            }
        }
    }

    /// Counts a batch refused whole (400): its records are neither stored nor dropped one by one.
    public func observeRejected(_ count: Int) {
        if count > 0 { rejected.increment(by: Int64(count)) }
    }

    /// The exposition text (Prometheus text format 0.0.4).
    public func text() -> String {
        adsClients.set(Int64(adsClientCount()))
        observeLeases()
        return registry.emitToString()
    }

    // MARK: - Series

    private static var requestsDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "sluice_requests", unitName: "total",
        helpText: "LLM requests answered by every Envoy, from their usage records.")
    }
    private static var costDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "sluice_cost_usd", unitName: "total", helpText: "Cost in dollars of the requests of every Envoy.")
    }
    private static var tokenDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "gen_ai_client_token", unitName: "usage",
        helpText: "Tokens per request across every Envoy (OpenTelemetry gen_ai.client.token.usage).")
    }
    private static var durationDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "gen_ai_server_request_duration", unitName: "seconds",
        helpText: "Request duration across every Envoy (OpenTelemetry gen_ai.server.request.duration).")
    }
    private static var timeToFirstTokenDescriptor: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "gen_ai_server_time_to_first_token", unitName: "seconds",
        helpText: "Time to the first token across every Envoy (OpenTelemetry gen_ai.server.time_to_first_token).")
    }

    private struct RequestSeries: Hashable {
        var key: String
        var team: String
        var model: String
        var backend: String
        /// `2xx`, `4xx`, …
        var statusClass: String

        init(_ record: FleetUsageRecord) {
            key = record.key
            team = record.team
            model = record.model
            backend = record.backend
            statusClass = "\(record.status / 100)xx"
        }

        var labels: [(String, String)] {
            [("key", key), ("team", team), ("model", model), ("backend", backend), ("status_class", statusClass)]
        }
    }

    private struct GenAISeries: Hashable {
        var model: String
        var provider: String
    }
}
