// One periodic exchange of the background worker over Envoy's HTTP callouts: the lease requests
// to sluiced (LeaseCourier) and each scraped endpoint's `/metrics` (EndpointScraper). At most one
// callout in flight; the next one is due after the interval, or after a backoff that doubles while
// attempts fail (`CalloutPacing`). Main thread only, like the callouts themselves.
internal import SluiceCore

struct CalloutChannel {
    /// The callout in flight, if any.
    private(set) var calloutID: UInt64?
    private(set) var pacing = CalloutPacing()
    let intervalMillis: Int64
    let maxBackoffMillis: Int64

    init(intervalMillis: Int64, maxBackoffMillis: Int64) {
        self.intervalMillis = intervalMillis
        self.maxBackoffMillis = max(intervalMillis, maxBackoffMillis)
    }

    var lastFailed: Bool { pacing.consecutiveFailures > 0 }

    /// No callout in flight and the interval (or backoff) since the last start has passed.
    func isDue(nowNanos: Int64) -> Bool {
        calloutID == nil && pacing.isDue(nowNanos: nowNanos, intervalMillis: intervalMillis, maxBackoffMillis: maxBackoffMillis)
    }

    /// Counts an attempt as started at `nowNanos` (pacing runs from here even if it cannot go out).
    mutating func markStarted(nowNanos: Int64) { pacing.started(nowNanos: nowNanos) }

    /// Starts the callout (after `markStarted`); a callout that cannot start counts as failed.
    mutating func send(
        _ handle: BootstrapConfigHandle, cluster: String, headers: ModuleHeaderList, body: [UInt8], timeoutMillis: Int64
    ) -> Result<UInt64, CalloutStartError> {
        let result = handle.startCallout(
            cluster: cluster, headers: headers, body: body, timeoutMilliseconds: UInt64(max(1, timeoutMillis)))
        switch result {
        case .success(let id): calloutID = id
        case .failure: pacing.failed()
        }
        return result
    }

    /// Whether `id` is this channel's callout; if so it is no longer in flight.
    mutating func take(_ id: UInt64) -> Bool {
        guard let calloutID, calloutID == id else { return false }
        self.calloutID = nil
        return true
    }

    mutating func succeeded() { pacing.succeeded() }
    mutating func failed() { pacing.failed() }

    /// Headers of a callout: pseudo-headers, `host`, then `extra`.
    static func headers(method: String, path: String, host: String, extra: [(String, String)]) -> ModuleHeaderList {
        var headers = ModuleHeaderList()
        var bytes = method.utf8.count + path.utf8.count + host.utf8.count + 32
        for (name, value) in extra { bytes += name.utf8.count + value.utf8.count }
        headers.reserveCapacity(entries: 3 + extra.count, bytes: bytes)
        headers.append(name: ":method", value: method)
        headers.append(name: ":path", value: path)
        headers.append(name: "host", value: host)
        for (name, value) in extra { headers.append(name: name, value: value) }
        return headers
    }
}
