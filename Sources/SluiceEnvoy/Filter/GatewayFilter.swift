// The `sluice` HTTP filter (downstream): client-key check, `GET /v1/models`, and for LLM API calls
// reading `model` from the buffered body to pick the route Envoy sends the request on. The
// client's own credentials are removed before anything goes upstream.
//
// The policy is `GatewayStream` in SluiceCore; this filter reads what each event needs from
// Envoy, feeds it to the machine, and carries out the machine's actions.
internal import SluiceCore

/// Metric ids defined once per config (Envoy stats under the `metrics_namespace` prefix). Names
/// and labels follow the OpenTelemetry GenAI semantic conventions, with `_` for `.` as
/// Prometheus requires (`gen_ai.client.token.usage` -> `gen_ai_client_token_usage`).
struct GatewayMetrics {
    /// `requests_total{outcome}`: forwarded, routed, models_listed, unauthorized or rejected.
    let requests: CounterID
    /// Tokens per request, by type (input/output): `gen_ai.client.token.usage`.
    let tokenUsage: HistogramID
    /// Running token totals with the same labels, for exact accounting and rates.
    let tokens: CounterID
    /// `gen_ai.server.request.duration`, in milliseconds.
    let requestDuration: HistogramID
    /// `gen_ai.server.time_to_first_token`, in milliseconds (streams).
    let timeToFirstToken: HistogramID
    /// `gen_ai.server.time_per_output_token`, in microseconds (streams).
    let timePerOutputToken: HistogramID
    /// Failed LLM calls by `error.type` (the HTTP status class or the gateway's error code).
    let errors: CounterID
    /// Requests refused by a quota: `quota_rejections_total{scope, dimension}`.
    let quotaRejections: CounterID

    static let labels = [
        "gen_ai_operation_name", "gen_ai_provider_name", "gen_ai_request_model", "gen_ai_response_model", "consumer",
    ]

    init(_ handle: FilterConfigHandle) throws(MetricError) {
        requests = try handle.defineCounter("requests_total", labels: ["outcome"])
        tokenUsage = try handle.defineHistogram("gen_ai_client_token_usage", labels: Self.labels + ["gen_ai_token_type"])
        tokens = try handle.defineCounter("gen_ai_client_tokens_total", labels: Self.labels + ["gen_ai_token_type"])
        requestDuration = try handle.defineHistogram("gen_ai_server_request_duration_ms", labels: Self.labels)
        timeToFirstToken = try handle.defineHistogram("gen_ai_server_time_to_first_token_ms", labels: Self.labels)
        timePerOutputToken = try handle.defineHistogram("gen_ai_server_time_per_output_token_us", labels: Self.labels)
        errors = try handle.defineCounter(
            "gen_ai_client_errors_total", labels: ["gen_ai_operation_name", "gen_ai_request_model", "consumer", "error_type"])
        quotaRejections = try handle.defineCounter("quota_rejections_total", labels: ["scope", "dimension", "consumer"])
    }
}

/// Quota counters of this process, kept across filter configs: Envoy builds a new config for
/// every listener update, and spent budgets and rate-limit debt must survive it.
let processQuotaRegistry = QuotaCounterRegistry()

final class GatewayFilterFactory: HTTPFilterFactory, @unchecked Sendable {
    // @unchecked: every stored property is immutable after init and itself thread-safe.
    let gateway: Gateway
    let metrics: GatewayMetrics
    /// Where labelled counter increments are summed between flushes to Envoy.
    let counters: AggregatedCounters

    private init(gateway: Gateway, metrics: GatewayMetrics, counters: AggregatedCounters) {
        self.gateway = gateway
        self.metrics = metrics
        self.counters = counters
    }

    static func make(config: [UInt8], handle: FilterConfigHandle) -> Result<HTTPFilterFactory, ConfigLoadError> {
        let parsed: GatewayConfig
        do {
            parsed = try GatewayConfig.parse(config)
        } catch {
            return .failure(ConfigLoadError("invalid filter_config: \(error.message)"))
        }
        let metrics: GatewayMetrics
        do {
            metrics = try GatewayMetrics(handle)
        } catch {
            return .failure(ConfigLoadError("could not define stats: \(error)"))
        }
        EnvoyLog.info(
            "sluice: filter config loaded: \(parsed.apiKeys.count) client keys, \(parsed.models.count) models, \(parsed.routes.count) routing rules")
        // With the fleet worker's lease book, every limited scope also admits against its slice
        // of the fleet's budget; the config holds its slots, so requests never consult the book.
        let leaseBook = ProcessLeaseBook.current
        let gateway = Gateway(
            config: parsed, quotaRegistry: processQuotaRegistry, leaseBook: leaseBook, leaseClock: MonotonicClock.nanos)
        if let leaseBook {
            EnvoyLog.info(
                "sluice: quotas admit against fleet leases (the process leases \(leaseBook.slots.filter(\.isActive).count) limited quantities)")
        }
        return .success(GatewayFilterFactory(gateway: gateway, metrics: metrics, counters: AggregatedCounters(config: handle)))
    }

    override func makeFilter(_ stream: EnvoyHTTPStream) -> HTTPFilter? { GatewayFilter(self) }

    override func onConfigScheduled(_ config: FilterConfigHandle, eventID: UInt64) {
        if eventID == AggregatedCounters.flushEvent { counters.flush() }
    }

    override func onDestroy() { counters.stop() }
}

final class GatewayFilter: HTTPFilter {
    private let factory: GatewayFilterFactory
    private var machine: GatewayStream
    /// What this request shares with its upstream attempts, once routed.
    private var link: FilterLink?

    init(_ factory: GatewayFilterFactory) {
        self.factory = factory
        machine = GatewayStream(gateway: factory.gateway)
    }

    override func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        let collectsUsage = ProcessUsageQueue.current != nil
        // The head's values are copied into the worker's buffer: they live for this hook only.
        let worker = workerIndex(stream)
        var bytes = requestBodyScratch.take(worker: worker)
        let status = decideHeaders(stream, endOfStream: endOfStream, collectsUsage: collectsUsage, into: &bytes)
        requestBodyScratch.giveBack(bytes, worker: worker)
        carryOut(stream)
        return status == .continue ? .continue : .stopIteration
    }

    /// The machine's verdict on the request headers, whose values are read into `bytes`.
    private func decideHeaders(
        _ stream: EnvoyHTTPStream, endOfStream: Bool, collectsUsage: Bool, into bytes: inout [UInt8]
    ) -> GatewayStatus {
        // One read of the header map for everything this hook needs.
        let (method, path, authorization, apiKey, contentLength, requestID) = stream.withRequestHeaderSnapshot { headers in
            (
                headers.appendFirst(":method", to: &bytes), headers.appendFirst(":path", to: &bytes),
                headers.appendFirst("authorization", to: &bytes), headers.appendFirst("x-api-key", to: &bytes),
                headers.value("content-length").flatMap(Int.init),
                collectsUsage ? headers.value("x-request-id") : nil
            )
        }
        var head = RequestHead(
            method: method.map { bytes[$0] } ?? [], path: path.map { bytes[$0] } ?? [],
            authorization: authorization.map { bytes[$0] }, apiKey: apiKey.map { bytes[$0] })
        // Reads and removes a header: after the snapshot, whose views it would invalidate.
        head.verifiedJWTPayload = takeVerifiedJWTPayload(stream)
        lendActions(stream)
        if collectsUsage {
            // A fleet worker collects usage records: note the request's id and arrival now.
            machine.usageRecordRequest = (requestID ?? "", WallClock.unixMicros())
        }
        return machine.requestHeaders(
            head, contentLength: contentLength, endOfStream: endOfStream,
            nowSeconds: WallClock.unixSeconds(), nowMillis: WallClock.unixMillis())
    }

    /// The payload jwt_authn forwarded for a token it verified in this request, if any; the header
    /// is removed either way, so neither a forged nor a genuine copy goes upstream.
    private func takeVerifiedJWTPayload(_ stream: EnvoyHTTPStream) -> [UInt8]? {
        guard let jwt = factory.gateway.config.jwt else { return nil }
        let count = stream.headerValueCount(jwt.payloadHeader)
        let verified = stream.hasMetadataKey(.dynamic, namespace: jwt.metadataNamespace, key: jwt.payloadMetadataKey)
        // jwt_authn appends its value after any the client sent: the last one is genuine. Verified
        // without a value (the provider has no `forward_payload_header`), the empty payload fails
        // with a clear 401 instead of falling back to keys.
        var payload: [UInt8]? = verified ? [] : nil
        if verified, count > 0 {
            payload = stream.withHeader(named: jwt.payloadHeader, index: count - 1) { $0.map { Array($0) } } ?? []
        }
        if count > 0 { _ = stream.removeHeader(named: jwt.payloadHeader) }
        return payload
    }

    override func onRequestBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        guard machine.awaitingBody else { return .continue }
        lendActions(stream)
        let size = stream.bodySize(.bufferedRequest) + stream.bodySize(.receivedRequest)
        switch machine.requestBody(bodySize: size, endOfStream: endOfStream, nowMillis: WallClock.unixMillis()) {
        case .pass:
            return .continue
        case .buffer:
            return .stopIterationAndBuffer
        case .rejected:
            carryOut(stream)
            return .stopIterationNoBuffer
        case .readAndRoute:
            // The copy lives for this hook only: the worker's buffer holds it.
            let worker = workerIndex(stream)
            var body = requestBodyScratch.take(worker: worker)
            body.reserveCapacity(size)
            stream.appendBody(of: .bufferedRequest, to: &body)
            stream.appendBody(of: .receivedRequest, to: &body)
            let routed = route(stream, body: body)
            requestBodyScratch.giveBack(body, worker: worker)
            return routed ? .continue : .stopIterationNoBuffer
        }
    }

    override func onRequestTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        guard machine.trailersEndTheBody else { return .continue }
        lendActions(stream)
        let worker = workerIndex(stream)
        var body = requestBodyScratch.take(worker: worker)
        stream.appendBody(of: .bufferedRequest, to: &body)
        let routed = route(stream, body: body)
        requestBodyScratch.giveBack(body, worker: worker)
        return routed ? .continue : .stopIteration
    }

    /// Routes on the complete body; false after a local reply.
    private func route(_ stream: EnvoyHTTPStream, body: [UInt8]) -> Bool {
        let routed = machine.route(
            body: body, header: { name in stream.header(name) }, nowMillis: WallClock.unixMillis(),
            nowMicros: WallClock.unixMicros())
        carryOut(stream)
        guard routed else { return false }
        if link == nil {
            // Envoy refused to store the link (see `linkFailed`).
            lendActions(stream)
            machine.linkFailed(nowMillis: WallClock.unixMillis())
            carryOut(stream)
            return false
        }
        return true
    }

    override func onLocalReply(_ stream: EnvoyHTTPStream, status: UInt32, details: String, resetImminent: Bool) -> Bool {
        machine.localReplyObserved(status: status, details: details, resetImminent: resetImminent)
        return false
    }

    override func onResponseHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        guard machine.routed != nil else { return .continue }
        lendActions(stream)
        let status = machine.responseHeaders(
            status: stream.header(":status", in: .response).flatMap(Int.init) ?? 0,
            contentLength: stream.header("content-length", in: .response).flatMap(UInt64.init),
            bufferLimit: stream.bufferLimit, endOfStream: endOfStream, report: { [link] in link?.report })
        carryOut(stream)
        return status == .continue ? .continue : .stopIteration
    }

    override func onResponseBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        guard machine.routed != nil else { return .continue }
        lendActions(stream)
        let status = machine.responseBody(
            receivedBytes: stream.bodySize(.receivedResponse), endOfStream: endOfStream, nowMicros: WallClock.unixMicros(),
            report: { [link] in link?.report })
        carryOut(stream)
        return status == .stopAndBuffer ? .stopIterationAndBuffer : .continue
    }

    override func onResponseTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        lendActions(stream)
        machine.responseTrailers(report: { [link] in link?.report })
        carryOut(stream)
        return .continue
    }

    override func onStreamComplete(_ stream: EnvoyHTTPStream) {
        if machine.routed != nil {
            lendActions(stream)
            machine.streamComplete(
                report: link?.report, nowMillis: WallClock.unixMillis(), nowMicros: WallClock.unixMicros())
            carryOut(stream)
        }
        // Routed requests leave a record here; requests the gateway refused left theirs earlier.
        if let record = machine.completedUsageRecord {
            machine.completedUsageRecord = nil
            // A full queue refuses the record and counts it; the worker reports it as dropped.
            ProcessUsageQueue.current?.push(record)
        }
    }

    override func onDestroy() {
        machine.destroyed(nowMillis: WallClock.unixMillis())
    }

    /// Gives the machine the worker's action buffer and metadata batch for this hook (`carryOut`
    /// gives them back), so a stream allocates neither of its own.
    private func lendActions(_ stream: EnvoyHTTPStream) {
        if machine.actions.capacity == 0 { machine.actions = gatewayActionScratch.take(worker: workerIndex(stream)) }
        if machine.metadataStorage.capacity == 0 {
            machine.metadataStorage = metadataBatchScratch.take(worker: workerIndex(stream))
        }
    }

    /// Carries out the machine's actions in order, then gives the emptied buffer back to the worker.
    private func carryOut(_ stream: EnvoyHTTPStream) {
        defer {
            // After the actions: a batch they held is referenced by the machine alone again.
            var spent: [GatewayAction] = []
            swap(&spent, &machine.actions)
            gatewayActionScratch.giveBack(spent, worker: workerIndex(stream))
            var batch: [(FilterMetadataKey, String)] = []
            swap(&batch, &machine.metadataStorage)
            metadataBatchScratch.giveBack(batch, worker: workerIndex(stream))
        }
        guard !machine.actions.isEmpty else { return }
        for action in machine.actions {
            switch action {
            case .removeRequestHeader(let name):
                stream.removeHeader(name)
            case .setRequestHeader(let name, let value):
                stream.setHeader(name, value)
            case .setResponseHeader(let name, let value):
                stream.setHeader(name, value, in: .response)
            case .raiseBufferLimit(let limit):
                if stream.bufferLimit < limit { stream.bufferLimit = limit }
            case .clearRouteCache:
                stream.clearRouteCache()
            case .writeMetadata(let entries):
                stream.setMetadata(entries)
            case .linkAttempts(let context):
                let link = FilterLink(context: context)
                if stream.setFilterStateObject(FilterLink.key, link) { self.link = link }
            case .writeTokenMetadata(let usage, let keys):
                usage.forEachMetadataNumber(in: keys) { stream.setMetadata($0, $1) }
            case .count(let counter, let labels, let value):
                factory.counters.add(factory.metrics.id(of: counter), labels: labels, by: value, on: stream)
            case .record(let histogram, let labels, let value):
                stream.record(factory.metrics.id(of: histogram), value, labels: labels)
            case .localReply(let reply, let rateLimits):
                stream.sendLocalReply(
                    status: reply.status, headers: ModuleHeaderList(reply.headers, rateLimits), body: reply.body,
                    details: reply.details)
            case .drainReceivedResponseBody:
                stream.drainBody(.receivedResponse, Int.max)
            case .appendResponseBody(let bytes, let buffered):
                stream.appendToBody(buffered ? .bufferedResponse : .receivedResponse, bytes)
            }
        }
        machine.actions.removeAll(keepingCapacity: true)
    }
}

extension GatewayMetrics {
    func id(of counter: GatewayCounter) -> CounterID {
        switch counter {
        case .requests: requests
        case .tokens: tokens
        case .errors: errors
        case .quotaRejections: quotaRejections
        }
    }

    func id(of histogram: GatewayHistogram) -> HistogramID {
        switch histogram {
        case .tokenUsage: tokenUsage
        case .requestDuration: requestDuration
        case .timeToFirstToken: timeToFirstToken
        case .timePerOutputToken: timePerOutputToken
        }
    }
}
