// The fleet worker's lease half: on the worker's timer it asks the process's `LeaseBook` for the
// next request, posts it to sluiced's `POST /v1/fleet/leases` with an Envoy HTTP callout (one at a
// time), reads the answer with `LeaseWire.readAnswer` and hands the grants to `book.apply`. At
// shutdown it sends one last request with `draining`, which reports the spend and gives every
// slice back. All of it on Envoy's main thread; the filters only touch the slots.
internal import SluiceCore

/// Stats of the lease half (under the extension's `metrics_namespace`, `sluice.`).
struct LeaseMetrics {
    /// Lease requests sluiced answered with a readable 200.
    let sent: CounterID
    /// Lease requests that got no answer, another status, or one that could not be read (resent).
    let failed: CounterID
    /// Leased quantities holding a valid lease now.
    let held: GaugeID
    /// The slots' denial and fail_open counts (`LeaseDenial.statName`).
    let limitDenied: CounterID
    let failClosedDenied: CounterID
    let failOpenCapDenied: CounterID
    let failOpenAdmitted: CounterID

    init(_ handle: BootstrapConfigHandle) throws(MetricError) {
        sent = try handle.defineCounter("lease_requests_sent")
        failed = try handle.defineCounter("lease_requests_failed")
        held = try handle.defineGauge("lease_slices_held")
        limitDenied = try handle.defineCounter("lease.limit_denied")
        failClosedDenied = try handle.defineCounter("lease.fail_closed_denied")
        failOpenCapDenied = try handle.defineCounter("lease.fail_open_cap_denied")
        failOpenAdmitted = try handle.defineCounter("lease.fail_open_admitted")
    }
}

final class LeaseCourier {
    let book: LeaseBook
    let settings: LeaseWorkerSettings
    private let metrics: LeaseMetrics
    private let handle: BootstrapConfigHandle
    private let cluster: String
    private let timeoutMillis: Int64
    private let monotonicNanos: () -> Int64

    /// The callout in flight and its pacing; the request it carries and when it left (monotonic).
    private var channel: CalloutChannel
    var calloutID: UInt64? { channel.calloutID }
    private var inFlight: (seq: Int64, sentAtNanos: Int64)?
    private(set) var draining = false
    /// Set once the draining request was answered (or there was nothing to return).
    private(set) var returnedAll = false

    private(set) var requestsSent: Int64 = 0
    private(set) var requestsFailed: Int64 = 0
    private var lastSuccessMillis: Int64?
    private var lastError: String?
    private var lastProblems: [String] = []
    /// The slot counts Envoy's counters were last told (they take increments).
    private var reported: (limit: Int64, closed: Int64, cap: Int64, open: Int64) = (0, 0, 0, 0)
    private var reportedRequests: (sent: Int64, failed: Int64) = (0, 0)

    init(
        book: LeaseBook, settings: LeaseWorkerSettings, metrics: LeaseMetrics, handle: BootstrapConfigHandle,
        cluster: String, timeoutMillis: Int64, monotonicNanos: @escaping () -> Int64
    ) {
        self.book = book
        self.settings = settings
        self.metrics = metrics
        self.handle = handle
        self.cluster = cluster
        self.timeoutMillis = timeoutMillis
        self.monotonicNanos = monotonicNanos
        // A failed request is resent after the interval, not sooner (no doubling: the lease
        // failure policy covers the wait, and a slice must be renewed before it expires).
        channel = CalloutChannel(intervalMillis: settings.intervalMillis, maxBackoffMillis: settings.intervalMillis)
    }

    /// Envoy shuts down: the next request reports and returns everything.
    func startDraining() { draining = true }

    /// Sends the next request when one is due and none is in flight (timer, main thread).
    /// `token` gives the fleet token (nil: unavailable, the tick is skipped and counted as failed).
    func tick(nowMillis: Int64, token: () -> String?) {
        guard channel.calloutID == nil, !returnedAll else { return }
        let now = monotonicNanos()
        // Due every interval, and at once when a slot had no lease or a slice fell short of a
        // burst (the book says so) — unless the last request failed: then the interval is the backoff.
        let wanted = book.takeRenewalWanted()
        guard draining || channel.isDue(nowNanos: now) || (wanted && !channel.lastFailed) else { return }
        guard let request = book.nextRequest(nowMillis: nowMillis, nowNanos: now, draining: draining) else {
            if draining { returnedAll = true }
            return
        }
        channel.markStarted(nowNanos: now)
        guard let token = token() else {
            channel.failed()
            failed("fleet token unavailable", nowMillis: nowMillis)
            return
        }
        let body = LeaseWire.requestBody(request, envoy: book.envoy, boot: book.boot)
        let headers = CalloutChannel.headers(
            method: "POST", path: "/v1/fleet/leases", host: cluster,
            extra: [("content-type", "application/json"), ("authorization", "Bearer " + token)])
        switch channel.send(handle, cluster: cluster, headers: headers, body: body, timeoutMillis: timeoutMillis) {
        case .success:
            inFlight = (request.seq, now)
        case .failure(let error):
            failed("callout could not start (\(error))", nowMillis: nowMillis)
        }
    }

    /// The callout `id` ended. Returns true when sluiced refused the token (read it again).
    func calloutDone(id: UInt64, outcome: FleetCalloutOutcome, nowMillis: Int64) -> Bool {
        guard let (seq, sentAtNanos) = inFlight, channel.take(id) else { return false }
        inFlight = nil
        switch outcome {
        case .failed(let reason):
            channel.failed()
            failed("sluiced unreachable: \(reason)", nowMillis: nowMillis)
        case .answered(let status, let body) where status != 200:
            let text = String(decoding: body.prefix(200), as: UTF8.self)
            channel.failed()
            failed("sluiced answered \(status): \(text)", nowMillis: nowMillis)
            return status == 401
        case .answered(_, let body):
            switch LeaseWire.readAnswer(body, seq: seq) {
            case .failure(let error):
                channel.failed()
                failed("unreadable answer: \(error.description)", nowMillis: nowMillis)
            case .success(let answer):
                book.apply(answer.grants, seq: seq, sentAtNanos: sentAtNanos)
                requestsSent += 1
                channel.succeeded()
                lastSuccessMillis = nowMillis
                if !answer.problems.isEmpty {
                    lastProblems = Array(answer.problems.prefix(8))
                    EnvoyLog.warn("sluice: lease answer problems: \(lastProblems.joined(separator: "; "))")
                }
                // Draining: done once the book has nothing left to report or return.
                if draining && !book.hasPendingRequest {
                    returnedAll = book.nextRequest(nowMillis: nowMillis, nowNanos: monotonicNanos(), draining: true) == nil
                }
            }
        }
        return false
    }

    private func failed(_ reason: String, nowMillis: Int64) {
        requestsFailed += 1
        lastError = reason
        EnvoyLog.debug("sluice: lease request not answered (\(reason)); resent on the next tick")
    }

    /// Brings Envoy's counters and gauge up to date.
    func report() {
        var counts: (limit: Int64, closed: Int64, cap: Int64, open: Int64) = (0, 0, 0, 0)
        var held: UInt64 = 0
        let now = monotonicNanos()
        for slot in book.slots {
            let c = slot.counts
            counts.limit &+= c.limitDenied
            counts.closed &+= c.failClosedDenied
            counts.cap &+= c.localCapDenied
            counts.open &+= c.failOpenAdmitted
            if slot.isValid(nowNanos: now) { held += 1 }
        }
        handle.increment(metrics.limitDenied, by: UInt64(max(0, counts.limit &- reported.limit)))
        handle.increment(metrics.failClosedDenied, by: UInt64(max(0, counts.closed &- reported.closed)))
        handle.increment(metrics.failOpenCapDenied, by: UInt64(max(0, counts.cap &- reported.cap)))
        handle.increment(metrics.failOpenAdmitted, by: UInt64(max(0, counts.open &- reported.open)))
        handle.set(metrics.held, held)
        reported = counts
        handle.increment(metrics.sent, by: UInt64(max(0, requestsSent - reportedRequests.sent)))
        handle.increment(metrics.failed, by: UInt64(max(0, requestsFailed - reportedRequests.failed)))
        reportedRequests = (requestsSent, requestsFailed)
    }

    /// The lease table for `/sluice/fleet`.
    func write(to writer: inout JSONWriter, nowMillis: Int64) {
        let now = monotonicNanos()
        writer.beginObject()
        writer.key("boot")
        writer.string(book.boot)
        writer.key("requests_sent")
        writer.int(requestsSent)
        writer.key("requests_failed")
        writer.int(requestsFailed)
        writer.key("in_flight")
        writer.bool(channel.calloutID != nil)
        writer.key("draining")
        writer.bool(draining)
        writer.key("last_success_ms")
        if let lastSuccessMillis { writer.int(lastSuccessMillis) } else { writer.null() }
        writer.key("last_error")
        if let lastError { writer.string(lastError) } else { writer.null() }
        writer.key("problems")
        writer.beginArray()
        for problem in lastProblems { writer.string(problem) }
        writer.endArray()
        writer.key("slots")
        writer.beginArray()
        for slot in book.slots {
            let window = slot.key.dimension.period.window(atMillis: nowMillis).id
            writer.beginObject()
            LeaseWire.writeKey(slot.key, to: &writer)
            writer.key("limit")
            writer.int(slot.limit)
            writer.key("policy")
            switch slot.policy {
            case .failClosed: writer.string("fail_closed")
            case .failOpen(let cap): writer.string("fail_open (local cap \(cap))")
            }
            writer.key("active")
            writer.bool(slot.isActive)
            writer.key("valid")
            writer.bool(slot.isValid(nowNanos: now))
            writer.key("window")
            writer.int(window)
            writer.key("remaining")
            writer.int(slot.remaining(window: window))
            let counts = slot.counts
            writer.key("limit_denied")
            writer.int(counts.limitDenied)
            writer.key("fail_closed_denied")
            writer.int(counts.failClosedDenied)
            writer.key("fail_open_cap_denied")
            writer.int(counts.localCapDenied)
            writer.key("fail_open_admitted")
            writer.int(counts.failOpenAdmitted)
            writer.endObject()
        }
        writer.endArray()
        writer.endObject()
    }
}
