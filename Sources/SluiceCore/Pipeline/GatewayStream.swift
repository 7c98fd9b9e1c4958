// The downstream `sluice` filter's policy for one stream, sans I/O, the shape swift-nio's state
// machines have: the filter reads what an event needs from Envoy (a few header values, a body
// size, the upstream attempt's report, the clock), calls one method, carries out the actions the
// machine queued in `actions` in order, and returns the status the method returned.
//
// Everything the filter decides lives here — authenticate, route, admit against quotas, hold the
// response for the cost header, meter usage, settle the quota, what to count and record — so it
// is unit-tested without Envoy or the fake host (`GatewayStreamTests`). The filter owns only the
// reading and the carrying out.
//
// Actions go into one buffer the filter empties after each event, so a request costs no array
// allocation per hook once the buffer has grown; the filter may lend the machine its worker's
// buffer for the event (`actions` is empty between events), and then a request costs none at all.

/// A labelled counter of the downstream filter (`GatewayMetrics` in the Envoy layer names them).
public enum GatewayCounter: Sendable, Equatable {
    /// `requests_total{outcome}`.
    case requests
    /// `gen_ai_client_tokens_total{…, gen_ai_token_type}`.
    case tokens
    /// `gen_ai_client_errors_total{operation, model, consumer, error_type}`.
    case errors
    /// `quota_rejections_total{scope, dimension, consumer}`.
    case quotaRejections
}

/// A labelled histogram of the downstream filter.
public enum GatewayHistogram: Sendable, Equatable {
    /// `gen_ai_client_token_usage{…, gen_ai_token_type}`.
    case tokenUsage
    /// `gen_ai_server_request_duration_ms`.
    case requestDuration
    /// `gen_ai_server_time_to_first_token_ms` (streams).
    case timeToFirstToken
    /// `gen_ai_server_time_per_output_token_us` (streams).
    case timePerOutputToken
}

/// One thing the filter must do for the machine, in order.
public enum GatewayAction: Sendable {
    case removeRequestHeader(StaticString)
    case setRequestHeader(StaticString, String)
    case setResponseHeader(String, String)
    /// Raise the stream's buffer limit to at least this many bytes.
    case raiseBufferLimit(UInt64)
    /// Envoy matched a route before the body arrived: match again.
    case clearRouteCache
    /// One metadata batch (strings, `sluice` namespace).
    case writeMetadata([(FilterMetadataKey, String)])
    /// Hand the routed request's facts to its upstream attempts (the filter stores them where
    /// every attempt finds them, and reads the attempts' reports back from there).
    case linkAttempts(AttemptContext)
    /// The user-facing token counts as metadata numbers (access logs), those of the keys given:
    /// `TokenUsage.forEachMetadataNumber(in:)` lists them.
    case writeTokenMetadata(TokenUsage, FilterMetadataKeys)
    case count(GatewayCounter, labels: [String], by: UInt64)
    case record(GatewayHistogram, labels: [String], value: UInt64)
    /// Answer locally (the status returned with it stops the stream).
    case localReply(LocalReply, rateLimits: [(name: String, value: String)])
    /// Drop what Envoy delivered in this response-body event.
    case drainReceivedResponseBody
    /// Append to the response body: `buffered` for the body Envoy holds at response-headers time
    /// (a response that ended with its headers), else to what this body event delivers.
    case appendResponseBody([UInt8], buffered: Bool)
}

/// What the filter tells Envoy after an event.
public enum GatewayStatus: Sendable, Equatable {
    case `continue`
    /// Stop (headers: hold them; after a local reply).
    case stop
    /// Body events: stop and let Envoy buffer.
    case stopAndBuffer
    /// Body events: stop without buffering (after a local reply).
    case stopNoBuffer
}

/// What the filter must do after a request-body event.
public enum RequestBodyStep: Sendable, Equatable {
    /// Not waiting for the body: let it pass.
    case pass
    /// Keep buffering.
    case buffer
    /// The body is complete: read it all and call `route(body:…)`.
    case readAndRoute
    /// Answered locally (actions hold the reply).
    case rejected
}

public struct GatewayStream: Sendable {
    public let gateway: Gateway
    /// What the filter must carry out after the last event; it empties the buffer afterwards.
    public var actions: [GatewayAction] = []

    /// The API endpoint of this request, once authorised.
    public private(set) var endpoint: Endpoint = .other
    /// Who the request belongs to, once authorised.
    public private(set) var consumer = Consumer(name: "")
    /// The routed request, until its metrics are recorded at the end of the stream.
    public private(set) var routed: RoutedRequest?
    /// True while the body is being buffered to find the model.
    public private(set) var awaitingBody = false
    private var startedAtMicros: Int64 = 0
    private var firstByteAtMicros: Int64?
    private var responseStatus = 0
    /// The quota reservation, settled (or released) exactly once.
    private var ticket: AdmissionTicket?
    /// A token count's rate-limit headers (it reserves nothing, so it has no ticket).
    private var freeRateLimits: RateLimitHeaders?
    /// True while response headers wait for the end of a non-streamed body, whose usage the cost
    /// header needs.
    private var holdingForCost = false
    /// The client's-shape body replacing Envoy's own text/plain reply to a routed call.
    private var proxyReplyBody: [UInt8]?
    /// The storage of the last metadata batch: the filter writes a batch out within the event
    /// that queued it, so the next batch (routing's, then the end's) reuses it. The filter may
    /// lend its worker's storage here for an event, and take it back after carrying it out.
    public var metadataStorage: [(FilterMetadataKey, String)] = []
    /// Set by the filter when the process has a fleet worker (`ProcessUsageQueue`): the request's
    /// `x-request-id` and arrival time. A routed request then leaves `completedUsageRecord` when its
    /// stream completes; without it, nothing extra is made.
    public var usageRecordRequest: (id: String, arrivalMicros: Int64)?
    /// The finished request's usage record, for the filter to push.
    public var completedUsageRecord: FleetUsageRecord?

    public init(gateway: Gateway) {
        self.gateway = gateway
    }

    // Label arrays of the `requests_total` outcomes, built once.
    private static let forwardedLabels = ["forwarded"]
    private static let modelsListedLabels = ["models_listed"]
    private static let routedLabels = ["routed"]
    private static let rejectedLabels = ["rejected"]

    // MARK: - Request

    /// The request's headers. `head` carries what authentication needs; `contentLength` is the
    /// parsed `content-length`, if any. Times are Unix seconds and milliseconds.
    public mutating func requestHeaders(
        _ head: RequestHead, contentLength: Int?, endOfStream: Bool, nowSeconds: Int64, nowMillis: @autoclosure () -> Int64
    ) -> GatewayStatus {
        // Room for a request's actions in one allocation; none when the filter lends the
        // worker's buffer (`actions` is emptied after every event, so it may come from anywhere).
        actions.reserveCapacity(8)
        switch gateway.decide(head, now: nowSeconds) {
        case .forward(let consumer, let endpoint):
            self.consumer = consumer
            self.endpoint = endpoint
            // The client's gateway key must never reach a provider.
            if head.authorization != nil { actions.append(.removeRequestHeader("authorization")) }
            if head.apiKey != nil { actions.append(.removeRequestHeader("x-api-key")) }
            guard endpoint.routesOnBody else {
                // Routed requests write the consumer with the route, in one batch.
                writeMetadata(consumerMetadata())
                actions.append(.count(.requests, labels: Self.forwardedLabels, by: 1))
                return .continue
            }
            if endOfStream {
                reject(.missingBody(), nowMillis: nowMillis())
                return .stop
            }
            if let contentLength, contentLength > gateway.maxRequestBytes {
                reject(.bodyTooLarge(limit: gateway.maxRequestBytes), nowMillis: nowMillis())
                return .stop
            }
            // Let Envoy buffer up to our own limit, so an oversized body gets our 413 in the
            // client's error shape rather than Envoy's plain-text one.
            actions.append(.raiseBufferLimit(UInt64(gateway.maxRequestBytes) + 64 * 1024))
            awaitingBody = true
            return .stop
        case .listModels(let reply, let consumer):
            actions.append(.count(.requests, labels: Self.modelsListedLabels, by: 1))
            let limits = gateway.rateLimitHeaders(for: consumer, model: nil, now: nowMillis())
            actions.append(.localReply(reply, rateLimits: limits.fields))
            return .stop
        case .reply(let reply, let outcome):
            actions.append(.count(.requests, labels: [outcome.rawValue], by: 1))
            actions.append(.localReply(reply, rateLimits: []))
            return .stop
        }
    }

    /// A request-body event; `bodySize` is what Envoy buffered plus what this event delivers.
    public mutating func requestBody(bodySize: Int, endOfStream: Bool, nowMillis: @autoclosure () -> Int64) -> RequestBodyStep {
        guard awaitingBody else { return .pass }
        if bodySize > gateway.maxRequestBytes {
            reject(.bodyTooLarge(limit: gateway.maxRequestBytes), nowMillis: nowMillis())
            return .rejected
        }
        return endOfStream ? .readAndRoute : .buffer
    }

    /// Request trailers ended the body: whether the filter must read it and route.
    public var trailersEndTheBody: Bool { awaitingBody }

    /// Picks the route from the complete body and admits the request; false after a local reply.
    /// - Parameters:
    ///   - body: The complete request body.
    ///   - header: Reads a request header by lower-case name (routing rules may look).
    ///   - nowMillis: Unix milliseconds: the time quotas admit at.
    ///   - nowMicros: Unix microseconds: the request duration and time to first token count
    ///     from here.
    public mutating func route(body: [UInt8], header: (String) -> String?, nowMillis: Int64, nowMicros: Int64) -> Bool {
        awaitingBody = false
        let request: RoutedRequest
        switch gateway.route(body: body, endpoint: endpoint, consumer: consumer, header: header) {
        case .failure(let error):
            reject(error, nowMillis: nowMillis)
            return false
        case .success(let success):
            request = success
        }
        // Counting tokens is free: neither admitted against quotas nor charged (no ticket); its
        // answer still carries the rate-limit headers every answer carries.
        if endpoint.countsTokens {
            freeRateLimits = gateway.rateLimitHeaders(for: consumer, model: request.summary.model, now: nowMillis)
        } else {
            // A form's bytes are mostly an uploaded file, not prompt text: no input estimate from them.
            let quotaRequest = gateway.quotaRequest(
                for: request, consumer: consumer, bodyByteCount: endpoint.readsMultipart ? 0 : body.count)
            switch gateway.quotas.admit(quotaRequest, now: nowMillis) {
            case .denied(let denial):
                actions.append(
                    .count(
                        .quotaRejections,
                        labels: [String(describing: denial.scope.kind), String(describing: denial.dimension), consumer.name], by: 1))
                reject(denial.error, rateLimits: denial.headers, nowMillis: nowMillis, model: request.summary.model)
                return false
            case .admitted(let admitted):
                ticket = admitted
            }
        }
        routed = request
        startedAtMicros = nowMicros
        actions.append(.setRequestHeader("x-sluice-route", request.route))
        if !gateway.config.endpointPickingModels.isEmpty,
            let isAdapter = gateway.config.endpointPickingModels[request.summary.model]
        {
            actions.append(.setRequestHeader("x-sluice-epp", Self.endpointHandOver(body: body, model: request.summary.model, isAdapter: isAdapter)))
        }
        var metadata = consumerMetadata()
        metadata.append((.model, request.summary.model))
        metadata.append((.route, request.route))
        writeMetadata(metadata)
        // Each upstream attempt starts from this body again (Envoy replays it): an attempt that
        // does not rewrite it must send this length, not an earlier attempt's.
        actions.append(
            .linkAttempts(
                AttemptContext(
                    endpoint: endpoint, model: request.summary.model, stream: request.summary.stream,
                    includeUsage: request.summary.includeUsage, requestBodyBytes: body.count)))
        // Envoy matched a route before the body arrived; match again on x-sluice-route.
        actions.append(.clearRouteCache)
        actions.append(.count(.requests, labels: Self.routedLabels, by: 1))
        return true
    }

    /// The filter could not hand the routed request to its upstream attempts (`linkAttempts`):
    /// another filter holds the key in the request's filter state. Answers 500 rather than let
    /// attempts go out untranslated and without the provider's credentials; the reservation is
    /// released (nothing went upstream).
    public mutating func linkFailed(nowMillis: Int64) {
        guard let request = routed else { return }
        routed = nil
        if let ticket {
            self.ticket = nil
            gateway.quotas.release(ticket, now: nowMillis)
        }
        reject(
            GatewayError(
                status: 500, type: "server_error", code: "gateway_misconfigured",
                message: "The gateway could not hand this request to its upstream filter: another filter holds the filter-state key 'sluice.filter_link'."),
            nowMillis: nowMillis, model: request.summary.model)
    }

    /// The `x-sluice-epp` value for a request to an endpoint-picked pool: the prefix hashes of
    /// the prompt's first `EndpointHandOver.maxBlocks` blocks (only those are hashed) and the
    /// adapter. See EndpointHandOver.swift for why the filter computes them and the load
    /// balancer scores.
    static func endpointHandOver(body: [UInt8], model: String, isAdapter: Bool) -> String {
        let span = body.span
        let prompt = EndpointHandOver.promptBytes(of: span)
        let end = min(prompt.upperBound, prompt.lowerBound &+ EndpointHandOver.maxBlocks &* PrefixBlockHashes.blockByteCount)
        let hashes = PrefixBlockHashes(prompt: span.extracting(prompt.lowerBound..<end))
        return EndpointHandOver.encode(prefix: hashes, adapter: isAdapter ? AdapterID(model) : nil)
    }

    // MARK: - Response

    /// Envoy answers a routed call itself (after an upstream reset, timeout or broken answer; not
    /// the gateway's own replies, whose details start with `sluice`): its text/plain body becomes
    /// an error in the client's API shape with the same status.
    public mutating func localReplyObserved(status: UInt32, details: String, resetImminent: Bool) {
        guard routed != nil, !resetImminent, !details.hasPrefix("sluice") else { return }
        proxyReplyBody = GatewayError.proxyReply(status: status, details: details).body(for: endpoint.clientAPI)
    }

    /// Response headers. `report` reads the upstream attempt's report (only when the cost header
    /// needs it); `bufferLimit` is the stream's.
    public mutating func responseHeaders(
        status: Int, contentLength: UInt64?, bufferLimit: UInt64, endOfStream: Bool, report: () -> AttemptReport?
    ) -> GatewayStatus {
        guard let routed else { return .continue }
        responseStatus = status
        // OpenAI sends its rate-limit headers on every response; so does the gateway.
        if let ticket {
            ticket.headers.forEachField { actions.append(.setResponseHeader($0, $1)) }
        } else if let freeRateLimits {
            freeRateLimits.forEachField { actions.append(.setResponseHeader($0, $1)) }
        }
        if let body = proxyReplyBody {
            actions.append(.setResponseHeader("content-type", "application/json"))
            actions.append(.setResponseHeader("content-length", String(body.count)))
            if endOfStream {
                proxyReplyBody = nil
                actions.append(.appendResponseBody(body, buffered: true))
            }
            return .continue
        }
        if let costHeader = gateway.config.responseCostHeader, !routed.summary.stream {
            if endpoint.usageKnownBeforeAnswer {
                // Speech: the cost was counted from the request; the audio must not wait for it.
                setCostHeader(costHeader, report: report)
                return .continue
            }
            if let contentLength, contentLength > bufferLimit {
                // Too large to hold (Envoy would answer 500 instead): this answer goes without the header.
                return .continue
            }
            if endOfStream {
                setCostHeader(costHeader, report: report)
            } else {
                // The usage arrives with the body: hold the headers (Envoy buffers the body, up to
                // the stream's buffer limit, which routing raised to the request limit).
                holdingForCost = true
                return .stop
            }
        }
        return .continue
    }

    /// A response-body event; `receivedBytes` is the size of what this event delivers.
    public mutating func responseBody(
        receivedBytes: Int, endOfStream: Bool, nowMicros: Int64, report: () -> AttemptReport?
    ) -> GatewayStatus {
        guard let routed else { return .continue }
        if let body = proxyReplyBody {
            // Envoy's text goes nowhere; the client's-shape error goes out with its end.
            actions.append(.drainReceivedResponseBody)
            if endOfStream {
                proxyReplyBody = nil
                actions.append(.appendResponseBody(body, buffered: false))
            }
            return .continue
        }
        if firstByteAtMicros == nil, receivedBytes > 0 { firstByteAtMicros = nowMicros }
        guard let costHeader = gateway.config.responseCostHeader else { return .continue }
        if holdingForCost {
            guard endOfStream else { return .stopAndBuffer }
            holdingForCost = false
            setCostHeader(costHeader, report: report)
        } else if endOfStream, routed.summary.stream, responseStatus < 300, let cost = cost(report()) {
            // Headers left long ago: the cost goes after the last event as an SSE comment, which
            // every SSE parser skips (WHATWG HTML §9.2.6) and a client may read.
            actions.append(.appendResponseBody(Array(": \(costHeader)=\(Dollars.format(micros: cost))\n\n".utf8), buffered: false))
        }
        return .continue
    }

    /// Response trailers: a body that ended with trailers releases the held headers.
    public mutating func responseTrailers(report: () -> AttemptReport?) {
        if holdingForCost, let costHeader = gateway.config.responseCostHeader {
            holdingForCost = false
            setCostHeader(costHeader, report: report)
        }
    }

    // MARK: - End

    /// The stream is over (success, error or reset): settle the quota with what the last upstream
    /// attempt reported, write the cost and tokens for access logs, record the GenAI metrics.
    public mutating func streamComplete(report: AttemptReport?, nowMillis: Int64, nowMicros: Int64) {
        guard let routed else { return }
        self.routed = nil
        let usage = report?.usage ?? TokenUsage()
        let model = routed.summary.model
        let cost = gateway.config.prices.cost(usage: usage, model: model)
        // For access logs, in one batch: the cost, and who answered (the last attempt).
        if cost != nil || report != nil {
            var entries = emptyMetadataBatch()
            if let cost { entries.append((.costUSD, Dollars.format(micros: cost))) }
            if let report {
                entries.append((.backend, report.backend))
                entries.append((.provider, report.provider))
                entries.append((.responseModel, report.responseModel))
            }
            writeMetadata(entries)
        }
        if let ticket {
            self.ticket = nil
            // The request went upstream, so it counts; its tokens and cost are what was reported.
            gateway.quotas.settle(ticket, actual: usage, costMicros: cost ?? 0, now: nowMillis)
        }
        // Access logs see the tokens as numbers, written once here rather than per publication.
        if report != nil { writeTokenMetadata(usage) }
        let provider = report?.provider ?? "none"
        let responseModel = report?.responseModel ?? model
        let labels = [endpoint.operationName, provider, model, responseModel, consumer.name]
        if responseStatus == 0 || responseStatus >= 400 {
            let errorType = responseStatus == 0 ? "no_response" : String(responseStatus)
            actions.append(.count(.errors, labels: [endpoint.operationName, model, consumer.name, errorType], by: 1))
        }
        let input = UInt64(clamping: usage.inputTokens)
        let output = UInt64(clamping: usage.outputTokens)
        // Images, speech characters and audio seconds are not tokens: neither the token metrics
        // nor the time per output token hold them.
        let meteredInTokens = report?.unit ?? .tokens == .tokens
        if input > 0 || output > 0, meteredInTokens {
            // One label array per token type, shared by the histogram and the counter.
            var inputLabels = labels
            inputLabels.append("input")
            var outputLabels = labels
            outputLabels.append("output")
            actions.append(.record(.tokenUsage, labels: inputLabels, value: input))
            actions.append(.record(.tokenUsage, labels: outputLabels, value: output))
            actions.append(.count(.tokens, labels: inputLabels, by: input))
            actions.append(.count(.tokens, labels: outputLabels, by: output))
        }
        let duration = max(0, nowMicros - startedAtMicros)
        actions.append(.record(.requestDuration, labels: labels, value: UInt64(duration / 1000)))
        if routed.summary.stream, let first = firstByteAtMicros {
            let ttft = max(0, first - startedAtMicros)
            actions.append(.record(.timeToFirstToken, labels: labels, value: UInt64(ttft / 1000)))
            if output > 1, meteredInTokens {
                actions.append(.record(.timePerOutputToken, labels: labels, value: UInt64(max(0, duration - ttft)) / (output - 1)))
            }
        }
        if let request = usageRecordRequest {
            usageRecordRequest = nil
            let stream = routed.summary.stream
            completedUsageRecord = FleetUsageRecord(
                id: request.id, timeMillis: request.arrivalMicros / 1000, key: consumer.name, team: consumer.team ?? "",
                model: model, backend: report?.backend ?? "", provider: report?.provider ?? "",
                status: responseStatus, unit: report?.unit ?? .tokens,
                inputTokens: usage.inputTokens, cachedInputTokens: usage.cachedInputTokens, outputTokens: usage.outputTokens,
                searchUnits: usage.searchUnits, costMicros: cost ?? 0, durationMillis: max(0, nowMicros - request.arrivalMicros) / 1000,
                ttftMillis: stream ? firstByteAtMicros.map { max(0, $0 - request.arrivalMicros) / 1000 } : nil, stream: stream)
        }
    }

    /// Envoy is done with the stream: a stream destroyed without completing must not keep its
    /// reservation.
    public mutating func destroyed(nowMillis: Int64) {
        if let ticket { gateway.quotas.release(ticket, now: nowMillis) }
        ticket = nil
    }

    // MARK: - Helpers

    /// One string batch of the keys the config writes (`metadata_keys`); nothing when none is left.
    private mutating func writeMetadata(_ entries: consuming [(FilterMetadataKey, String)]) {
        var entries = entries
        let keys = gateway.config.metadataKeys
        // In place: the caller's array is handed over, so leaving keys out allocates nothing.
        if keys != .all { entries.removeAll { !keys.contains($0.0) } }
        metadataStorage = entries
        if !entries.isEmpty { actions.append(.writeMetadata(entries)) }
    }

    /// An empty batch with room for four entries, in the last batch's storage when the filter
    /// has written that batch out (else new storage: a queued batch is never changed).
    private mutating func emptyMetadataBatch() -> [(FilterMetadataKey, String)] {
        var entries: [(FilterMetadataKey, String)] = []
        swap(&entries, &metadataStorage)
        entries.removeAll(keepingCapacity: true)
        entries.reserveCapacity(4)
        return entries
    }

    /// The token counts as numbers, when the config writes any of their keys.
    private mutating func writeTokenMetadata(_ usage: TokenUsage) {
        let keys = gateway.config.metadataKeys
        guard !keys.isDisjoint(with: .tokenCounts) else { return }
        actions.append(.writeTokenMetadata(usage, keys))
    }

    /// The consumer's metadata entries (for access logs), to which an event adds its own.
    private mutating func consumerMetadata() -> [(FilterMetadataKey, String)] {
        var entries = emptyMetadataBatch()
        entries.append((.consumer, consumer.name))
        if let team = consumer.team { entries.append((.team, team)) }
        return entries
    }

    /// Micro-dollars for the reported usage; nil when the model has no price.
    private func cost(_ report: AttemptReport?) -> Int64? {
        guard let routed else { return nil }
        return gateway.config.prices.cost(usage: report?.usage ?? TokenUsage(), model: routed.summary.model)
    }

    private mutating func setCostHeader(_ name: String, report: () -> AttemptReport?) {
        guard let cost = cost(report()) else { return }
        actions.append(.setResponseHeader(name, Dollars.format(micros: cost)))
    }

    /// Answers an authorised request with `error`. `rateLimits` defaults to the consumer's current
    /// headers (every response carries them); a quota denial passes its own.
    private mutating func reject(
        _ error: GatewayError, rateLimits: RateLimitHeaders? = nil, nowMillis: Int64, model: String = ""
    ) {
        awaitingBody = false
        writeMetadata(consumerMetadata())
        actions.append(.count(.requests, labels: Self.rejectedLabels, by: 1))
        let reply = LocalReply.error(error, for: endpoint.clientAPI, details: "sluice_rejected_request")
        if let request = usageRecordRequest {
            // An authorised LLM request the gateway answered itself (429, 413, 400, 403) is usage
            // too: a record with its status and no tokens.
            usageRecordRequest = nil
            completedUsageRecord = FleetUsageRecord(
                id: request.id, timeMillis: request.arrivalMicros / 1000, key: consumer.name, team: consumer.team ?? "",
                model: model, backend: "", provider: "", status: Int(reply.status), inputTokens: 0, cachedInputTokens: 0,
                outputTokens: 0, costMicros: 0, durationMillis: max(0, nowMillis - request.arrivalMicros / 1000),
                ttftMillis: nil, stream: false)
        }
        let limits = rateLimits ?? gateway.rateLimitHeaders(for: consumer, model: nil, now: nowMillis)
        actions.append(.localReply(reply, rateLimits: limits.fields))
    }
}
