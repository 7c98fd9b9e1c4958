// The `sluice_upstream` HTTP filter: runs in a backend cluster's upstream filter chain, once per
// attempt, so each attempt (including a retry that fell over to another provider) is translated
// for, and authenticated to, the backend it actually goes to.
//
// It learns about the request from the `FilterLink` the downstream `sluice` filter stored in the
// request's filter state, and leaves its report there. Header edits made here persist into a retry's headers (Envoy shares the
// request header map between attempts), so every attempt recomputes `:path` and credentials from
// scratch; body edits do not persist (Envoy replays its own copy of the body).
//
// The policy is `UpstreamAttempt` in SluiceCore; this filter reads what each event needs from
// Envoy (credential bytes included, when the machine asks for a source), feeds it to the machine,
// and carries out the machine's actions.
internal import SluiceCore

final class UpstreamFilterFactory: HTTPFilterFactory, @unchecked Sendable {
    // @unchecked: immutable after init.
    /// The backends, label arrays and clamp-warning count every attempt of this config shares.
    let shared: UpstreamAttempt.Shared
    /// SDS handles of the credentials that come from secrets, by secret name.
    let secrets: [String: SecretHandle]
    let attempts: CounterID
    /// `upstream_usage_clamped`: attempts whose backend reported token counts beyond
    /// `TokenUsage.maxCount` (a buggy or hostile upstream).
    let usageClamped: CounterID

    /// Where labelled counter increments are summed between flushes to Envoy.
    let counters: AggregatedCounters

    private init(
        config: UpstreamConfig, secrets: [String: SecretHandle], attempts: CounterID, usageClamped: CounterID,
        counters: AggregatedCounters
    ) {
        self.counters = counters
        self.shared = UpstreamAttempt.Shared(config: config, crypto: LibCrypto.requestSigning)
        self.secrets = secrets
        self.attempts = attempts
        self.usageClamped = usageClamped
    }

    static func make(config bytes: [UInt8], handle: FilterConfigHandle) -> Result<HTTPFilterFactory, ConfigLoadError> {
        let config: UpstreamConfig
        do {
            config = try UpstreamConfig.parse(bytes)
        } catch {
            return .failure(ConfigLoadError("invalid filter_config: \(error.message)"))
        }
        var secrets: [String: SecretHandle] = [:]
        for source in config.backends.flatMap(\.configuredCredentialSources) {
            guard case .secret(let name, _) = source, secrets[name] == nil else { continue }
            guard let subscribed = handle.subscribeGenericSecret(name, configSourceJSON: source.configSourceJSON) else {
                return .failure(ConfigLoadError("could not subscribe to generic secret '\(name)'"))
            }
            secrets[name] = subscribed
        }
        let attempts: CounterID
        let usageClamped: CounterID
        do {
            attempts = try handle.defineCounter("upstream_attempts_total", labels: ["backend", "outcome"])
            usageClamped = try handle.defineCounter("upstream_usage_clamped")
        } catch {
            return .failure(ConfigLoadError("could not define stats: \(error)"))
        }
        let names = config.backends.map { "\($0.name) (\($0.schema.rawValue))" }.joined(separator: ", ")
        EnvoyLog.info("sluice: upstream filter loaded for backends: \(names)")
        return .success(
            UpstreamFilterFactory(
                config: config, secrets: secrets, attempts: attempts, usageClamped: usageClamped,
                counters: AggregatedCounters(config: handle)))
    }

    override func makeFilter(_ stream: EnvoyHTTPStream) -> HTTPFilter? { UpstreamFilter(self) }

    override func onConfigScheduled(_ config: FilterConfigHandle, eventID: UInt64) {
        if eventID == AggregatedCounters.flushEvent { counters.flush() }
    }

    override func onDestroy() { counters.stop() }

    /// The text of `source`, read fresh on every attempt so SDS rotation applies; nil when a
    /// secret is not (yet) delivered.
    func credential(_ source: CredentialSource, _ stream: EnvoyHTTPStream) -> String? {
        switch source {
        case .value(let value):
            return value
        case .secret(let name, _):
            guard let handle = secrets[name] else { return nil }
            return stream.withGenericSecret(handle) { $0.map { String(decoding: $0, as: UTF8.self) } }
        }
    }
}

final class UpstreamFilter: HTTPFilter {
    private let factory: UpstreamFilterFactory
    private var machine: UpstreamAttempt
    /// The request's link to the downstream filter; nil when `sluice` did not route it.
    private var link: FilterLink?

    init(_ factory: UpstreamFilterFactory) {
        self.factory = factory
        machine = UpstreamAttempt(shared: factory.shared)
    }

    override func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        let factory = factory
        let link = stream.filterLink
        self.link = link
        guard let link else { return .continue }  // not routed by `sluice`: forward as is
        lendActions(stream)
        // The machine only reads the headers here; the edits are carried out after.
        let status = stream.withRequestHeaderSnapshot { headers in
            machine.requestHeaders(
                context: link.context,
                hostBackend: stream.metadataString(.host, namespace: FilterMetadata.namespace, key: FilterMetadataKey.backend.name),
                headers: headers, endOfStream: endOfStream, nowSeconds: WallClock.unixSeconds(),
                credential: { factory.credential($0, stream) }, carried: link.carriedRequestHeaders)
        }
        carryOut(stream)
        return status == .continue ? .continue : .stopIteration
    }

    override func onRequestBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        switch machine.requestBody(endOfStream: endOfStream) {
        case .pass:
            return .continue
        case .buffer:
            return .stopIterationAndBuffer
        case .read:
            // The copy lives for this hook only: the worker's buffer holds it.
            lendActions(stream)
            let worker = workerIndex(stream)
            var body = requestBodyScratch.take(worker: worker)
            body.reserveCapacity(stream.bodySize(.bufferedRequest) + stream.bodySize(.receivedRequest))
            stream.appendBody(of: .bufferedRequest, to: &body)
            stream.appendBody(of: .receivedRequest, to: &body)
            let factory = factory
            let status = machine.requestBodyComplete(
                body, header: { stream.header($0) }, nowSeconds: WallClock.unixSeconds(),
                credential: { factory.credential($0, stream) })
            carryOut(stream)
            requestBodyScratch.giveBack(body, worker: worker)
            return status == .continue ? .continue : .stopIterationNoBuffer
        }
    }

    /// Trailers end the request (HTTP/2 and gRPC-style clients send them): the body waiting in
    /// Envoy's buffer is the whole body, so it is translated and signed here, as the last body
    /// event would have done. Without this the buffered body would go out untranslated.
    override func onRequestTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        guard machine.requestBody(endOfStream: true) == .read else { return .continue }
        lendActions(stream)
        let worker = workerIndex(stream)
        var body = requestBodyScratch.take(worker: worker)
        body.reserveCapacity(stream.bodySize(.bufferedRequest))
        stream.appendBody(of: .bufferedRequest, to: &body)
        let factory = factory
        let status = machine.requestBodyComplete(
            body, header: { stream.header($0) }, nowSeconds: WallClock.unixSeconds(),
            credential: { factory.credential($0, stream) })
        carryOut(stream, inTrailers: true)
        requestBodyScratch.giveBack(body, worker: worker)
        return status == .continue ? .continue : .stopIteration
    }

    override func onResponseHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        lendActions(stream)
        let status = machine.responseHeaders(
            status: stream.header(":status", in: .response).flatMap(Int.init) ?? 0,
            header: { stream.header($0, in: .response) }, endOfStream: endOfStream)
        carryOut(stream)
        return status == .continue ? .continue : .stopIteration
    }

    override func onResponseBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        lendActions(stream)
        // A whole body read to translate goes into the worker's buffer (only at the end).
        if endOfStream, link != nil { machine.lentBodyStorage = requestBodyScratch.take(worker: workerIndex(stream)) }
        let status = machine.responseBody(
            endOfStream: endOfStream, bodySize: { stream.bodySize(Self.responseBuffer($0)) },
            read: { part, bytes in stream.appendBody(of: Self.responseBuffer(part), to: &bytes) })
        carryOut(stream)
        takeBackBodyStorage(stream)
        return status == .stopAndBuffer ? .stopIterationAndBuffer : .continue
    }

    /// Trailers end the response (an HTTP/2 upstream, or a proxy in front of one, may send
    /// them): what Envoy buffered is the whole body, so translation and metering finish here.
    /// Otherwise a held body would go to the client untranslated and its usage unmetered.
    override func onResponseTrailers(_ stream: EnvoyHTTPStream) -> TrailersStatus {
        lendActions(stream)
        if link != nil { machine.lentBodyStorage = requestBodyScratch.take(worker: workerIndex(stream)) }
        let status = machine.responseBody(
            endOfStream: true, bodySize: { $0 == .buffered ? stream.bodySize(.bufferedResponse) : 0 },
            read: { part, bytes in if part == .buffered { stream.appendBody(of: .bufferedResponse, to: &bytes) } })
        carryOut(stream, inTrailers: true)
        takeBackBodyStorage(stream)
        return status == .stopAndBuffer ? .stopIteration : .continue
    }

    private static func responseBuffer(_ part: BodyPart) -> BodyBuffer {
        part == .buffered ? .bufferedResponse : .receivedResponse
    }

    /// Returns what the machine holds of a lent body buffer to the worker.
    private func takeBackBodyStorage(_ stream: EnvoyHTTPStream) {
        guard machine.lentBodyStorage.capacity > 0 else { return }
        var storage: [UInt8] = []
        swap(&storage, &machine.lentBodyStorage)
        requestBodyScratch.giveBack(storage, worker: workerIndex(stream))
    }

    /// Gives the machine the worker's action buffer for this hook (`carryOut` gives it back), so
    /// an attempt allocates none of its own. Only routed requests have actions.
    private func lendActions(_ stream: EnvoyHTTPStream) {
        guard link != nil, machine.actions.capacity == 0 else { return }
        machine.actions = upstreamActionScratch.take(worker: workerIndex(stream))
    }

    /// Carries out the machine's actions in order, then gives the emptied buffer back to the worker.
    /// In a trailers hook Envoy has no received body, so new body bytes go into the buffered one.
    private func carryOut(_ stream: EnvoyHTTPStream, inTrailers: Bool = false) {
        defer {
            if machine.actions.capacity > 0 {
                var spent: [UpstreamAction] = []
                swap(&spent, &machine.actions)
                upstreamActionScratch.giveBack(spent, worker: workerIndex(stream))
            }
        }
        guard !machine.actions.isEmpty else { return }
        let requestBody: BodyBuffer = inTrailers ? .bufferedRequest : .receivedRequest
        let responseBody: BodyBuffer = inTrailers ? .bufferedResponse : .receivedResponse
        for action in machine.actions {
            switch action {
            case .removeRequestHeader(let name):
                stream.removeHeader(named: name)
            case .carryRequestHeader(let name, let value):
                link?.carriedRequestHeaders.append((name, value))
            case .setRequestHeader(let name, let value):
                stream.setHeader(name, value)
            case .replaceRequestBody(let body):
                stream.drainBody(.bufferedRequest, Int.max)
                if !inTrailers { stream.drainBody(.receivedRequest, Int.max) }
                stream.appendToBody(requestBody, body)
            case .setResponseHeader(let name, let value):
                stream.setHeader(name, value, in: .response)
            case .removeResponseHeader(let name):
                stream.removeHeader(named: name, in: .response)
            case .replaceResponseBody(let body):
                stream.drainBody(.bufferedResponse, Int.max)
                if !inTrailers { stream.drainBody(.receivedResponse, Int.max) }
                stream.appendToBody(responseBody, body)
            case .replaceReceivedResponseBody(let body):
                if !inTrailers { stream.drainBody(.receivedResponse, Int.max) }
                if !body.isEmpty { stream.appendToBody(responseBody, body) }
            case .appendBufferedResponseBody(let body):
                stream.appendToBody(.bufferedResponse, body)
            case .localReply(let reply):
                stream.sendLocalReply(
                    status: reply.status, headers: ModuleHeaderList(reply.headers), body: reply.body, details: reply.details)
            case .publishReport(let report):
                link?.report = report
            case .count(.attempts, let labels):
                factory.counters.add(factory.attempts, labels: labels, on: stream)
            case .count(.usageClamped, _):
                stream.increment(factory.usageClamped)
            case .logWarning(let message):
                EnvoyLog.warn(message)
            }
        }
        machine.actions.removeAll(keepingCapacity: true)
    }
}
