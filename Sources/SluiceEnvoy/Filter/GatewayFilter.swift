// The `sluice` HTTP filter (downstream): client-key check, `GET /v1/models`, and for LLM API calls
// reading `model` from the buffered body to pick the route Envoy sends the request on. The
// client's own credentials are removed before anything goes upstream.
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
        let gateway = Gateway(config: parsed, quotaRegistry: processQuotaRegistry)
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
    /// The API endpoint of this request, once authorised.
    private var endpoint: Endpoint = .other
    /// True while the body is being buffered to find the model.
    private var awaitingBody = false
    /// Who the request belongs to, once authorised.
    private var consumer = Consumer(name: "")
    /// The routed request, for metrics at the end of the stream.
    private var routed: RoutedRequest?
    private var startedAtMicros: Int64 = 0
    private var firstByteAtMicros: Int64?
    private var responseStatus = 0
    /// The quota reservation of this request, settled (or released) exactly once at the end.
    private var ticket: AdmissionTicket?
    /// True while response headers wait for the end of a non-streamed body, whose usage the cost
    /// header needs.
    private var holdingForCost = false
    /// The client's-shape body replacing Envoy's own text/plain reply to a routed call (an
    /// upstream reset, timeout or broken answer), sent once Envoy's body has been dropped.
    private var proxyReplyBody: [UInt8]?

    init(_ factory: GatewayFilterFactory) { self.factory = factory }

    // Label arrays of the `requests_total` outcomes, built once.
    private static let forwardedLabels = ["forwarded"]
    private static let modelsListedLabels = ["models_listed"]
    private static let routedLabels = ["routed"]
    private static let rejectedLabels = ["rejected"]

    /// A labelled counter increment, summed in the module until the next flush to Envoy.
    private func count(_ stream: EnvoyHTTPStream, _ counter: CounterID, _ labels: [String], by value: UInt64 = 1) {
        factory.counters.add(counter, labels: labels, by: value, on: stream)
    }

    override func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        let head = RequestHead(
            method: stream.withHeader(":method") { $0.map { Array($0) } } ?? [],
            path: stream.withHeader(":path") { $0.map { Array($0) } } ?? [],
            authorization: stream.withHeader("authorization") { $0.map { Array($0) } },
            apiKey: stream.withHeader("x-api-key") { $0.map { Array($0) } },
            verifiedJWTPayload: takeVerifiedJWTPayload(stream)
        )
        switch factory.gateway.decide(head, now: WallClock.unixSeconds()) {
        case .forward(let consumer, let endpoint):
            self.consumer = consumer
            // The client's gateway key must never reach a provider.
            if head.authorization != nil { stream.removeHeader("authorization") }
            if head.apiKey != nil { stream.removeHeader("x-api-key") }
            self.endpoint = endpoint
            guard endpoint.routesOnBody else {
                // Routed requests write the consumer with the route, in one batch (`route`).
                stream.setMetadata(consumerMetadata())
                count(stream, factory.metrics.requests, Self.forwardedLabels)
                return .continue
            }
            if endOfStream {
                reject(stream, .missingBody())
                return .stopIteration
            }
            if let length = stream.header("content-length").flatMap(Int.init), length > factory.gateway.maxRequestBytes {
                reject(stream, .bodyTooLarge(limit: factory.gateway.maxRequestBytes))
                return .stopIteration
            }
            // Let Envoy buffer up to our own limit, so an oversized body gets our 413 in the
            // client's error shape rather than Envoy's plain-text one.
            let wanted = UInt64(factory.gateway.maxRequestBytes) + 64 * 1024
            if stream.bufferLimit < wanted { stream.bufferLimit = wanted }
            awaitingBody = true
            return .stopIteration
        case .listModels(let reply, let consumer):
            count(stream, factory.metrics.requests, Self.modelsListedLabels)
            let limits = factory.gateway.rateLimitHeaders(for: consumer, model: nil, now: WallClock.unixMillis())
            stream.sendLocalReply(
                status: reply.status, headers: ModuleHeaderList(reply.headers, limits.fields), body: reply.body,
                details: reply.details)
            return .stopIteration
        case .reply(let reply, let outcome):
            count(stream, factory.metrics.requests, [outcome.rawValue])
            stream.sendLocalReply(
                status: reply.status, headers: ModuleHeaderList(reply.headers), body: reply.body, details: reply.details)
            return .stopIteration
        }
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
        guard awaitingBody else { return .continue }
        let size = stream.bodySize(.bufferedRequest) + stream.bodySize(.receivedRequest)
        if size > factory.gateway.maxRequestBytes {
            reject(stream, .bodyTooLarge(limit: factory.gateway.maxRequestBytes))
            return .stopIterationNoBuffer
        }
        guard endOfStream else { return .stopIterationAndBuffer }
        var body: [UInt8] = []
        body.reserveCapacity(size)
        stream.appendBody(of: .bufferedRequest, to: &body)
        stream.appendBody(of: .receivedRequest, to: &body)
        return route(stream, body: body) ? .continue : .stopIterationNoBuffer
    }

    override func onRequestTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        guard awaitingBody else { return .continue }
        var body: [UInt8] = []
        stream.appendBody(of: .bufferedRequest, to: &body)
        return route(stream, body: body) ? .continue : .stopIteration
    }

    /// Envoy answers a routed call itself (the router after an upstream reset, timeout or broken
    /// answer; not the gateway's own replies): its text/plain body becomes an error in the
    /// client's API shape with the same status.
    override func onLocalReply(_ stream: EnvoyHTTPStream, status: UInt32, details: String, resetImminent: Bool) -> Bool {
        guard routed != nil, !resetImminent, !details.hasPrefix("sluice") else { return false }
        proxyReplyBody = GatewayError.proxyReply(status: status, details: details).body(for: endpoint.clientAPI)
        return false
    }

    override func onResponseHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        guard routed != nil else { return .continue }
        responseStatus = stream.header(":status", in: .response).flatMap(Int.init) ?? 0
        // OpenAI sends its rate-limit headers on every response; so does the gateway.
        if let ticket {
            for header in ticket.headers.fields { stream.setHeader(header.name, header.value, in: .response) }
        }
        if let body = proxyReplyBody {
            stream.setHeader("content-type", "application/json", in: .response)
            stream.setHeader("content-length", String(body.count), in: .response)
            if endOfStream {
                proxyReplyBody = nil
                stream.appendToBody(.bufferedResponse, body)
            }
            return .continue
        }
        if let costHeader = factory.gateway.config.responseCostHeader, let routed, !routed.summary.stream {
            let length = stream.header("content-length", in: .response).flatMap(UInt64.init)
            if let length, length > stream.bufferLimit {
                // Too large to hold (Envoy would answer 500 instead): this answer goes without the header.
                return .continue
            }
            if endOfStream {
                setCostHeader(stream, costHeader, model: routed.summary.model)
            } else {
                // The usage arrives with the body: hold the headers (Envoy buffers the body, up to
                // the stream's buffer limit, which routing raised to the request limit).
                holdingForCost = true
                return .stopIteration
            }
        }
        return .continue
    }

    override func onResponseBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        guard let routed else { return .continue }
        if let body = proxyReplyBody {
            // Envoy's text goes nowhere; the client's-shape error goes out with its end.
            stream.drainBody(.receivedResponse, Int.max)
            if endOfStream {
                proxyReplyBody = nil
                stream.appendToBody(.receivedResponse, body)
            }
            return .continue
        }
        if firstByteAtMicros == nil, stream.bodySize(.receivedResponse) > 0 {
            firstByteAtMicros = WallClock.unixMicros()
        }
        guard let costHeader = factory.gateway.config.responseCostHeader else { return .continue }
        if holdingForCost {
            guard endOfStream else { return .stopIterationAndBuffer }
            holdingForCost = false
            setCostHeader(stream, costHeader, model: routed.summary.model)
        } else if endOfStream, routed.summary.stream, responseStatus < 300, let cost = cost(stream, model: routed.summary.model) {
            // Headers left long ago: the cost goes after the last event as an SSE comment, which
            // every SSE parser skips (WHATWG HTML §9.2.6) and a client may read.
            _ = stream.appendToBody(.receivedResponse, Array(": \(costHeader)=\(Dollars.format(micros: cost))\n\n".utf8))
        }
        return .continue
    }

    override func onResponseTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        // A body that ended with trailers: release the held headers with the cost known now.
        if holdingForCost, let costHeader = factory.gateway.config.responseCostHeader, let routed {
            holdingForCost = false
            setCostHeader(stream, costHeader, model: routed.summary.model)
        }
        return .continue
    }

    private func setCostHeader(_ stream: EnvoyHTTPStream, _ name: String, model: String) {
        guard let cost = cost(stream, model: model) else { return }
        _ = stream.setHeader(name, Dollars.format(micros: cost), in: .response)
    }

    /// Micro-dollars for the usage the upstream attempt reported so far; nil when `model` has no price.
    private func cost(_ stream: EnvoyHTTPStream, model: String) -> Int64? {
        factory.gateway.config.prices.cost(usage: stream.attemptReport()?.usage ?? TokenUsage(), model: model)
    }

    /// The consumer's metadata entries (for access logs), to which a hook adds its own.
    private func consumerMetadata() -> KeyValueBatch {
        var batch = KeyValueBatch()
        batch.add(.consumer, consumer.name)
        if let team = consumer.team { batch.add(.team, team) }
        return batch
    }

    /// Records the GenAI metrics of a routed request once it is over (success, error or reset).
    override func onStreamComplete(_ stream: EnvoyHTTPStream) {
        guard let routed else { return }
        self.routed = nil
        // The last upstream attempt's report (zero usage when none reported), decoded strictly.
        let report = stream.attemptReport()
        let usage = report?.usage ?? TokenUsage()
        settleQuota(stream, usage: usage, model: routed.summary.model)
        // Access logs see the tokens as numbers, written once here rather than per publication.
        if report != nil { stream.setTokenMetadata(usage) }
        let metrics = factory.metrics
        let provider = report?.provider ?? "none"
        let responseModel = report?.responseModel ?? routed.summary.model
        let labels = [endpoint.operationName, provider, routed.summary.model, responseModel, consumer.name]
        if responseStatus == 0 || responseStatus >= 400 {
            let errorType = responseStatus == 0 ? "no_response" : String(responseStatus)
            count(stream, metrics.errors, [endpoint.operationName, routed.summary.model, consumer.name, errorType])
        }
        let input = UInt64(clamping: usage.inputTokens)
        let output = UInt64(clamping: usage.outputTokens)
        if input > 0 || output > 0 {
            stream.record(metrics.tokenUsage, input, labels: labels + ["input"])
            stream.record(metrics.tokenUsage, output, labels: labels + ["output"])
            count(stream, metrics.tokens, labels + ["input"], by: input)
            count(stream, metrics.tokens, labels + ["output"], by: output)
        }
        let now = WallClock.unixMicros()
        let duration = max(0, now - startedAtMicros)
        stream.record(metrics.requestDuration, UInt64(duration / 1000), labels: labels)
        if routed.summary.stream, let first = firstByteAtMicros {
            let ttft = max(0, first - startedAtMicros)
            stream.record(metrics.timeToFirstToken, UInt64(ttft / 1000), labels: labels)
            if output > 1 {
                stream.record(metrics.timePerOutputToken, UInt64(max(0, duration - ttft)) / (output - 1), labels: labels)
            }
        }
    }

    /// Charges the actual usage and cost (releasing the estimate), or releases it all when the
    /// request used nothing; records the cost in dynamic metadata for access logs.
    private func settleQuota(_ stream: EnvoyHTTPStream, usage: TokenUsage, model: String) {
        let cost = factory.gateway.config.prices.cost(usage: usage, model: model)
        if let cost {
            var batch = KeyValueBatch()
            batch.add(.costUSD, Dollars.format(micros: cost))
            stream.setMetadata(batch)
        }
        guard let ticket else { return }
        self.ticket = nil
        // The request went upstream, so it counts; its tokens and cost are what was reported.
        factory.gateway.quotas.settle(ticket, actual: usage, costMicros: cost ?? 0, now: WallClock.unixMillis())
    }

    override func onDestroy() {
        // A stream Envoy destroyed without completing it must not keep its reservation.
        if let ticket { factory.gateway.quotas.release(ticket, now: WallClock.unixMillis()) }
        ticket = nil
    }

    /// Picks the route from the complete body; false after sending an error reply.
    private func route(_ stream: EnvoyHTTPStream, body: [UInt8]) -> Bool {
        awaitingBody = false
        let result = factory.gateway.route(body: body, endpoint: endpoint, consumer: consumer) { name in stream.header(name) }
        switch result {
        case .failure(let error):
            reject(stream, error)
            return false
        case .success(let request):
            let quotaRequest = factory.gateway.quotaRequest(for: request, consumer: consumer, bodyByteCount: body.count)
            switch factory.gateway.quotas.admit(quotaRequest, now: WallClock.unixMillis()) {
            case .denied(let denial):
                count(
                    stream, factory.metrics.quotaRejections,
                    [String(describing: denial.scope.kind), String(describing: denial.dimension), consumer.name])
                reject(stream, denial.error, rateLimits: denial.headers)
                return false
            case .admitted(let admitted):
                ticket = admitted
            }
            self.routed = request
            startedAtMicros = WallClock.unixMicros()
            stream.setHeader("x-sluice-route", request.route)
            var batch = consumerMetadata()
            batch.add(.model, request.summary.model)
            batch.add(.route, request.route)
            // Each upstream attempt starts from this body again (Envoy replays it): an attempt
            // that does not rewrite it must send this length, not an earlier attempt's.
            let context = AttemptContext(
                endpoint: endpoint, model: request.summary.model, stream: request.summary.stream,
                includeUsage: request.summary.includeUsage, requestBodyBytes: body.count)
            batch.add(.attemptContext, context.encoded)
            stream.setMetadata(batch)
            // Envoy matched a route before the body arrived; match again on x-sluice-route.
            stream.clearRouteCache()
            count(stream, factory.metrics.requests, Self.routedLabels)
            return true
        }
    }

    /// Answers an authorised request with `error`. `rateLimits` defaults to the consumer's
    /// current headers (every response carries them); a quota denial passes its own.
    @inline(never)
    private func reject(_ stream: EnvoyHTTPStream, _ error: GatewayError, rateLimits: RateLimitHeaders? = nil) {
        awaitingBody = false
        stream.setMetadata(consumerMetadata())
        count(stream, factory.metrics.requests, Self.rejectedLabels)
        let reply = LocalReply.error(error, for: endpoint.clientAPI, details: "sluice_rejected_request")
        let limits = rateLimits ?? factory.gateway.rateLimitHeaders(for: consumer, model: nil, now: WallClock.unixMillis())
        stream.sendLocalReply(
            status: reply.status, headers: ModuleHeaderList(reply.headers, limits.fields), body: reply.body,
            details: reply.details)
    }
}
