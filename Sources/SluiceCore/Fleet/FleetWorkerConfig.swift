// The background worker's config: the JSON `extension_config` of the `envoy.bootstrap.dynamic_modules`
// extension that loads module `sluice` (sluiced's rendered bootstrap writes it):
//
// {"cluster": "sluiced_fleet", "token_file": "/abs/.sluiced/fleet-token", "envoy": "<node id>",
//  "flush_interval_ms": 1000, "batch_max_records": 500, "buffer_max_records": 100000,
//  "timeout_ms": 2000}
//
// Parsed strictly: an unknown field, a wrong type or a value out of range refuses the config with
// the field named, so Envoy does not start with a worker that silently does something else.

/// What the background worker needs to ship usage records to sluiced.
public struct FleetWorkerConfig: Sendable, Equatable {
    /// The Envoy cluster that reaches sluiced's admin listener.
    public var cluster: String
    /// Absolute path of the fleet token file (`Authorization: Bearer <token>`).
    public var tokenFile: String
    /// This Envoy's name in every batch (its node id): 1...128 printable ASCII bytes.
    public var envoy: String
    /// A batch goes out at least this often while records wait.
    public var flushIntervalMillis: Int64 = 1000
    /// A batch goes out as soon as this many records wait; also the largest batch.
    public var batchMaxRecords: Int = 500
    /// Records held while sluiced is away; past this, new records are dropped and counted.
    public var bufferMaxRecords: Int = 100_000
    /// Timeout of each callout to sluiced; also the bound on the flush at shutdown.
    public var timeoutMillis: Int64 = 2000
    /// Fleet quota leases (`"leases": {...}`); nil: the filters keep local quotas only.
    public var leases: LeaseWorkerSettings?
    /// The model-server metrics scraper (`"endpoint_metrics": {...}`); on by default, it has
    /// work only while some cluster uses the endpoint picker with an `endpoints` list.
    public var endpointMetrics = EndpointScrapeSettings()

    public init(cluster: String, tokenFile: String, envoy: String) {
        self.cluster = cluster
        self.tokenFile = tokenFile
        self.envoy = envoy
    }

    /// The protocol's batch limit (sluiced accepts 1...1000 records per batch).
    public static let maxBatchRecords = 1000

    public static func parse(_ bytes: [UInt8]) throws(ConfigError) -> FleetWorkerConfig {
        let document: JSONValue
        do {
            document = try JSONParser.parse(bytes, limits: JSONLimits(maxDepth: 8, maxBytes: 64 * 1024))
        } catch {
            throw ConfigError(path: "", problem: "extension_config is not valid JSON: \(error)")
        }
        var root = try ConfigObject(document, path: "")
        let cluster = try root.nonEmptyString("cluster")
        let tokenFile = try root.nonEmptyString("token_file")
        guard tokenFile.utf8.first == UInt8(ascii: "/") else {
            throw ConfigError(path: "token_file", problem: "must be an absolute path, got \"\(tokenFile.prefix(80))\"")
        }
        let envoy = try root.nonEmptyString("envoy")
        guard envoy.utf8.count <= 128, envoy.utf8.allSatisfy(FleetUsageRecord.isPrintableASCII) else {
            throw ConfigError(path: "envoy", problem: "must be 1 to 128 printable ASCII characters")
        }
        var config = FleetWorkerConfig(cluster: cluster, tokenFile: tokenFile, envoy: envoy)
        if let value = try root.optionalInt("flush_interval_ms", in: 10...3_600_000) { config.flushIntervalMillis = value }
        if let value = try root.optionalInt("batch_max_records", in: 1...Int64(maxBatchRecords)) {
            config.batchMaxRecords = Int(value)
        }
        if let value = try root.optionalInt("buffer_max_records", in: 1...10_000_000) { config.bufferMaxRecords = Int(value) }
        if let value = try root.optionalInt("timeout_ms", in: 1...600_000) { config.timeoutMillis = value }
        if var leases = try root.optionalObject("leases") {
            var settings = LeaseWorkerSettings()
            if let value = try leases.optionalInt("interval_ms", in: 10...60_000) { settings.intervalMillis = value }
            if let value = try leases.optionalInt("horizon_ms", in: 100...600_000) { settings.horizonMillis = value }
            if let value = try leases.optionalInt("margin_ms", in: 0...60_000) { settings.marginMillis = value }
            try leases.finish()
            config.leases = settings
        }
        if var scrape = try root.optionalObject("endpoint_metrics") {
            var settings = EndpointScrapeSettings()
            if let value = try scrape.optionalString("cluster") {
                guard !value.isEmpty, value.utf8.count <= 128, value.utf8.allSatisfy(FleetUsageRecord.isPrintableASCII) else {
                    throw ConfigError(path: scrape.childPath("cluster"), problem: "must be 1 to 128 printable ASCII characters")
                }
                settings.cluster = value
            }
            let interval = EndpointScrapeSettings.intervalRange
            if let value = try scrape.optionalInt("interval_ms", in: interval) { settings.intervalMillis = value }
            if let value = try scrape.optionalInt("timeout_ms", in: EndpointScrapeSettings.timeoutRange) { settings.timeoutMillis = value }
            if let value = try scrape.optionalInt("max_backoff_ms", in: EndpointScrapeSettings.backoffRange) {
                settings.maxBackoffMillis = value
            }
            if let value = try scrape.optionalInt("max_page_bytes", in: EndpointScrapeSettings.pageBytesRange) {
                settings.maxPageBytes = Int(value)
            }
            guard settings.maxBackoffMillis >= settings.intervalMillis else {
                throw ConfigError(
                    path: scrape.childPath("max_backoff_ms"),
                    problem: "must be at least interval_ms (\(settings.intervalMillis)), got \(settings.maxBackoffMillis)")
            }
            try scrape.finish()
            config.endpointMetrics = settings
        }
        try root.finish()
        return config
    }
}

/// How the worker scrapes the picker pools' `/metrics` (`endpoint_metrics` in its config).
public struct EndpointScrapeSettings: Sendable, Equatable {
    /// The Envoy cluster the scrapes go through: an ORIGINAL_DST cluster that takes the target
    /// from the `x-envoy-original-dst-host` header (sluiced renders it when a pool uses the picker).
    public var cluster = "sluice_endpoint_metrics"
    /// Each endpoint is scraped this often while it answers.
    public var intervalMillis: Int64 = 50
    /// A scrape not answered within this fails.
    public var timeoutMillis: Int64 = 500
    /// After failures an endpoint is retried at doubling intervals up to this.
    public var maxBackoffMillis: Int64 = 1000
    /// A larger page fails the scrape (model servers' pages are tens of KiB).
    public var maxPageBytes = 1 << 20

    public init() {}

    public static let intervalRange: ClosedRange<Int64> = 10...60_000
    public static let timeoutRange: ClosedRange<Int64> = 10...60_000
    public static let backoffRange: ClosedRange<Int64> = 10...600_000
    public static let pageBytesRange: ClosedRange<Int64> = 1024...Int64(ModelServerMetrics.maxPageBytes)
}

/// The worker's lease settings (`leases` in the bootstrap extension's config).
public struct LeaseWorkerSettings: Sendable, Equatable {
    /// How often the worker may send a lease request (one at a time).
    public var intervalMillis: Int64 = 1000
    /// `LeaseBookSettings.horizonMillis`: how far ahead of demand to hold (must stay below
    /// sluiced's 5 s lookahead to get the next window's slice ahead of time).
    public var horizonMillis: Int64 = 3000
    /// `LeaseBookSettings.marginMillis`: a slice is not used this close to its expiry.
    public var marginMillis: Int64 = 1000

    public init() {}

    public var bookSettings: LeaseBookSettings {
        LeaseBookSettings(horizonMillis: horizonMillis, marginMillis: marginMillis)
    }
}
