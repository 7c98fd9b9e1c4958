// The pure half of the background worker's metrics scraper (SluiceEnvoy's EndpointScraper does
// the callouts): when an endpoint is due, what an answer is worth, and what each endpoint's state
// turns into in the published snapshot.
//
// Pages come from the model servers: untrusted. A page is used only when it is a 200 no larger
// than `max_page_bytes` and names at least one of the metrics the scorer reads;
// `ModelServerMetrics.parse` clamps every number. Anything else is a failed scrape, and a failed
// scrape makes the endpoint stale at once (its last good figures stay on the admin page, never in
// the snapshot): the picker then uses least-request for the pool until the endpoint answers again,
// rather than scoring on figures that stopped moving.

/// When the next attempt of a periodic callout is due: every `interval` while it succeeds, then at
/// doubling intervals up to `maxBackoff` while it fails. One attempt at a time: the caller starts
/// an attempt only when none is in flight. Used for the lease requests and for each scraped
/// endpoint.
public struct CalloutPacing: Sendable, Equatable {
    /// When the last attempt started (monotonic nanoseconds); `.min` before the first.
    public private(set) var lastStartNanos: Int64 = .min
    /// Attempts that failed since the last success.
    public private(set) var consecutiveFailures = 0

    public init() {}

    /// The wait after the last attempt's start before the next: `interval`, or after `n` failures
    /// `interval × 2^n` capped at `maxBackoff` (never below `interval`).
    public func waitMillis(intervalMillis: Int64, maxBackoffMillis: Int64) -> Int64 {
        guard consecutiveFailures > 0 else { return intervalMillis }
        let cap = max(intervalMillis, maxBackoffMillis)
        let shift = min(consecutiveFailures, 30)
        let (backoff, overflow) = intervalMillis.multipliedReportingOverflow(by: Int64(1) << Int64(shift))
        return overflow ? cap : min(backoff, cap)
    }

    public func isDue(nowNanos: Int64, intervalMillis: Int64, maxBackoffMillis: Int64) -> Bool {
        guard lastStartNanos != .min else { return true }
        let (elapsed, overflow) = nowNanos.subtractingReportingOverflow(lastStartNanos)
        // A clock that went backwards (or an absurd gap) makes it due rather than never.
        guard !overflow, elapsed >= 0 else { return true }
        return elapsed >= waitMillis(intervalMillis: intervalMillis, maxBackoffMillis: maxBackoffMillis) &* 1_000_000
    }

    public mutating func started(nowNanos: Int64) { lastStartNanos = nowNanos }
    public mutating func succeeded() { consecutiveFailures = 0 }
    public mutating func failed() { consecutiveFailures = min(consecutiveFailures &+ 1, 1 << 20) }
}

/// Why a scrape did not give metrics.
public struct EndpointScrapeError: Error, Equatable, Sendable, CustomStringConvertible {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

public enum MetricsPage {
    /// The metrics of an answered scrape, or why they are not usable.
    public static func read(status: Int, body: [UInt8], maxBytes: Int) -> Result<ModelServerMetrics, EndpointScrapeError> {
        guard status == 200 else { return .failure(EndpointScrapeError("answered \(status)")) }
        guard body.count <= maxBytes else {
            return .failure(EndpointScrapeError("page of \(body.count) bytes exceeds max_page_bytes (\(maxBytes))"))
        }
        let metrics = ModelServerMetrics.parse(body)
        guard metrics.waitingRequests != nil || metrics.runningRequests != nil || metrics.kvCacheUsage != nil else {
            return .failure(
                EndpointScrapeError(
                    "no queue or KV-cache metric on the page (\(body.count) bytes, \(metrics.ignoredSamples) samples unreadable)"))
        }
        return .success(metrics)
    }
}

/// What the scraper knows of one endpoint.
public struct ScrapedEndpoint: Sendable {
    /// As Envoy names the host ("ip:port").
    public let address: String
    /// Scrapes failed since the last good one.
    public private(set) var consecutiveFailures = 0
    /// The last good figures and when they were read (wall-clock milliseconds).
    public private(set) var lastGood: ModelServerMetrics?
    public private(set) var lastGoodAtMillis: Int64?
    public private(set) var scrapesOK = 0
    public private(set) var scrapesFailed = 0
    public private(set) var lastError: String?
    public private(set) var lastErrorAtMillis: Int64?

    public init(address: String) { self.address = address }

    /// Whether the last scrape failed (or none succeeded yet): the snapshot says stale.
    public var isFailing: Bool { consecutiveFailures > 0 || lastGoodAtMillis == nil }

    public mutating func succeeded(_ metrics: ModelServerMetrics, atMillis: Int64) {
        lastGood = metrics
        lastGoodAtMillis = atMillis
        scrapesOK &+= 1
        consecutiveFailures = 0
    }

    public mutating func failed(_ reason: String, atMillis: Int64) {
        scrapesFailed &+= 1
        lastError = String(reason.prefix(200))
        lastErrorAtMillis = atMillis
        consecutiveFailures = min(consecutiveFailures &+ 1, 1 << 20)
    }

    /// The endpoint in a published snapshot: its figures while scrapes succeed; no read time
    /// (stale to the scorer) from the first failure until the next success.
    public var snapshotState: EndpointState {
        if isFailing { return EndpointState(metrics: lastGood ?? ModelServerMetrics(), readAtMillis: nil) }
        return EndpointState(metrics: lastGood ?? ModelServerMetrics(), readAtMillis: lastGoodAtMillis)
    }
}
