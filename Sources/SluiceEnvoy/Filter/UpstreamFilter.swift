// The `sluice_upstream` HTTP filter: runs in a backend cluster's upstream filter chain, once per
// attempt, so each attempt (including a retry that fell over to another provider) is translated
// for, and authenticated to, the backend it actually goes to.
//
// It learns about the request from the dynamic metadata the downstream `sluice` filter left
// (namespace `sluice`). Header edits made here persist into a retry's headers (Envoy shares the
// request header map between attempts), so every attempt recomputes `:path` and credentials from
// scratch; body edits do not persist (Envoy replays its own copy of the body).
internal import SluiceCore
import Synchronization

final class UpstreamFilterFactory: HTTPFilterFactory, @unchecked Sendable {
    // @unchecked: immutable after init.
    let config: UpstreamConfig
    /// SDS handles of the credentials that come from secrets, by secret name.
    let secrets: [String: SecretHandle]
    let attempts: CounterID
    /// `upstream_usage_clamped`: attempts whose backend reported token counts beyond
    /// `TokenUsage.maxCount` (a buggy or hostile upstream).
    let usageClamped: CounterID
    /// Answers with clamped usage so far, for rate-limiting their warning.
    let clampedReports = Atomic<Int>(0)

    /// Where labelled counter increments are summed between flushes to Envoy.
    let counters: AggregatedCounters

    private init(
        config: UpstreamConfig, secrets: [String: SecretHandle], attempts: CounterID, usageClamped: CounterID,
        counters: AggregatedCounters
    ) {
        self.counters = counters
        self.config = config
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

    /// The bytes of `source`, read fresh on every attempt so SDS rotation applies.
    func withCredential<R>(_ source: CredentialSource?, _ stream: EnvoyHTTPStream, _ body: ([UInt8]?) -> R) -> R {
        switch source {
        case .value(let value)?:
            return body(Array(value.utf8))
        case .secret(let name, _)?:
            guard let handle = secrets[name] else { return body(nil) }
            return stream.withGenericSecret(handle) { body($0.map { Array($0) }) }
        case nil:
            return body(nil)
        }
    }
}

final class UpstreamFilter: HTTPFilter {
    private let factory: UpstreamFilterFactory
    private var backend: BackendConfig?
    private var exchange: UpstreamExchange?
    private var awaitingBody = false
    private var responseMode: ResponseMode = .passthrough
    private var responseStatus = 0
    private var streamTranslator: StreamTranslator?
    /// The plan's body handling and signature, for the request body hook.
    private var rewritesBody = false
    private var signing: RequestSigning?
    /// A same-schema response body copied as it passes, to read its usage at the end (bounded).
    private var meteredBody: [UInt8] = []
    private var meteredBodyOverflowed = false
    private var finalUsage = TokenUsage()
    private var publishedUsage: TokenUsage?
    /// Whether this attempt's clamped usage was counted already (streams publish repeatedly).
    private var countedClampedUsage = false
    private static let maxMeteredBodyBytes = 8 * 1024 * 1024

    init(_ factory: UpstreamFilterFactory) { self.factory = factory }

    override func onRequestHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        guard let context = stream.attemptContext() else {
            // Not an LLM call routed by `sluice` (or the filter is missing downstream): forward as is.
            return .continue
        }
        let endpoint = context.endpoint
        // Which backend this attempt's host belongs to (endpoint metadata), or the only one.
        let hostBackend = stream.metadataString(.host, namespace: FilterMetadata.namespace, key: FilterMetadataKey.backend.name)
        guard let backend = factory.config.backend(named: hostBackend) else {
            fail(stream, TranslateError(
                status: 500, code: "backend_unknown",
                message: "The gateway cannot tell which backend this upstream host belongs to."), api: endpoint.clientAPI)
            return .stopIteration
        }
        self.backend = backend
        let exchange = UpstreamExchange(
            backend: backend, clientAPI: endpoint.clientAPI, endpoint: endpoint, requestModel: context.model,
            stream: context.stream, includeUsage: context.includeUsage,
            created: WallClock.unixSeconds(),
            requestID: stream.header("x-request-id") ?? "sluice")
        self.exchange = exchange
        let plan: UpstreamRequestPlan
        do throws(TranslateError) {
            plan = try exchange.requestPlan()
        } catch {
            fail(stream, error)
            return .stopIteration
        }
        for name in UpstreamRequestPlan.credentialHeaders { stream.removeHeader(named: name) }
        stream.removeHeader("x-sluice-route")
        if let method = plan.method { stream.setHeader(":method", method) }
        stream.setHeader(":path", plan.path)
        if let host = backend.host { stream.setHeader(":authority", host) }
        for header in plan.setHeaders { stream.setHeader(header.name, header.value) }
        switch plan.credential {
        case .none:
            break
        case .header(let credential):
            let ok = factory.withCredential(credential.source, stream) { secret -> Bool in
                guard let secret, !secret.isEmpty else { return false }
                stream.setHeader(credential.name, credential.prefix + String(decoding: secret, as: UTF8.self))
                return true
            }
            guard ok else {
                fail(stream, .credentialMissing(backend: backend.name))
                return .stopIteration
            }
        case .signature(let signing):
            // Signed in the body hook, over the final body.
            self.signing = signing
        }
        rewritesBody = plan.rewritesBody
        guard plan.needsBody else {
            // Header edits persist across attempts while Envoy replays the client's own body: a
            // retry after an attempt that rewrote the body still carries that attempt's length.
            stream.setHeader("content-length", String(context.requestBodyBytes))
            return .continue
        }
        if endOfStream {
            fail(stream, .invalidBody("This endpoint needs a JSON request body."))
            return .stopIteration
        }
        awaitingBody = true
        return .stopIteration
    }

    override func onRequestBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        guard awaitingBody, var exchange else { return .continue }
        guard endOfStream else { return .stopIterationAndBuffer }
        awaitingBody = false
        var body: [UInt8] = []
        body.reserveCapacity(stream.bodySize(.bufferedRequest) + stream.bodySize(.receivedRequest))
        stream.appendBody(of: .bufferedRequest, to: &body)
        stream.appendBody(of: .receivedRequest, to: &body)
        var sent = body
        if rewritesBody {
            do throws(TranslateError) {
                sent = try exchange.translateRequest(body)
                self.exchange = exchange
            } catch {
                fail(stream, error)
                return .stopIterationNoBuffer
            }
            stream.drainBody(.bufferedRequest, Int.max)
            stream.drainBody(.receivedRequest, Int.max)
            stream.appendToBody(.receivedRequest, sent)
        }
        stream.setHeader("content-length", String(sent.count))
        if let signing {
            guard sign(stream, signing, exchange: exchange, body: sent) else { return .stopIterationNoBuffer }
        }
        return .continue
    }

    /// Signs the final request as the plan's credential says, with the bytes of the sources it
    /// names (read fresh, so SDS rotation applies); false after failing the attempt.
    private func sign(_ stream: EnvoyHTTPStream, _ signing: RequestSigning, exchange: UpstreamExchange, body: [UInt8]) -> Bool {
        let credentials = signing.credentialSources.map { source in factory.withCredential(source, stream) { $0 } }
        let request = SignableRequest(
            method: stream.header(":method") ?? "POST", host: stream.header(":authority") ?? "",
            path: stream.header(":path") ?? "", body: body)
        do throws(TranslateError) {
            let headers = try exchange.signatureHeaders(
                signing, request: request, credentials: credentials, unixSeconds: WallClock.unixSeconds(),
                crypto: LibCrypto.requestSigning)
            for header in headers { stream.setHeader(header.name, header.value) }
            return true
        } catch {
            fail(stream, error)
            return false
        }
    }

    override func onResponseHeaders(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        guard var exchange else { return .continue }
        // The headers this backend's adapter reads (a request id, an error type), by the names it lists.
        let headerNames = exchange.responseHeaderNames
        if !headerNames.isEmpty {
            for name in headerNames {
                if let value = stream.header(name, in: .response) { exchange.noteResponseHeader(name: name, value: value) }
            }
            self.exchange = exchange
        }
        responseStatus = stream.header(":status", in: .response).flatMap(Int.init) ?? 0
        responseMode = exchange.responseMode(status: responseStatus, contentType: stream.header("content-type", in: .response))
        factory.counters.add(factory.attempts, labels: [exchange.backend.name, responseStatus >= 400 ? "error" : "ok"], on: stream)
        switch responseMode {
        case .passthrough:
            return .continue
        case .passthroughMetered:
            if endOfStream { publishUsage(stream, TokenUsage()) }
            return .continue
        case .translateStream:
            do throws(TranslateError) {
                streamTranslator = try exchange.makeStreamTranslator()
            } catch {
                responseMode = .translateError
                return holdForBody(stream, endOfStream: endOfStream)
            }
            stream.setHeader("content-type", exchange.clientContentType(.translateStream), in: .response)
            stream.removeHeader("content-length", in: .response)
            return .continue
        case .translateBody, .translateError:
            return holdForBody(stream, endOfStream: endOfStream)
        }
    }

    /// Headers wait until the whole body is translated (its length changes). A response that
    /// ends with its headers still owes the client an answer in its API: a 2xx without a body is a
    /// broken answer (502), an error without a body gets the client's error shape; the body is
    /// added here (Envoy takes a body added while it encodes end-of-stream headers).
    private func holdForBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> HeadersStatus {
        guard endOfStream else { return .stopIteration }
        let translated = translateWhole(body: [])
        publishUsage(stream, finalUsage)
        stream.appendToBody(.bufferedResponse, translated.body)
        replaceResponseHeaders(stream, translated)
        return .continue
    }

    override func onResponseBody(_ stream: EnvoyHTTPStream, endOfStream: Bool) -> BodyStatus {
        switch responseMode {
        case .passthrough:
            return .continue
        case .passthroughMetered:
            if !meteredBodyOverflowed {
                if meteredBody.count + stream.bodySize(.receivedResponse) > Self.maxMeteredBodyBytes {
                    meteredBodyOverflowed = true
                    meteredBody = []
                } else {
                    stream.appendBody(of: .receivedResponse, to: &meteredBody)
                }
            }
            if endOfStream, let exchange {
                publishUsage(stream, meteredBodyOverflowed ? TokenUsage() : exchange.usage(ofPassthrough: meteredBody))
                meteredBody = []
            }
            return .continue
        case .translateStream:
            guard var translator = streamTranslator else { return .continue }
            var chunk: [UInt8] = []
            stream.appendBody(of: .receivedResponse, to: &chunk)
            var out = translator.feed(chunk)
            if endOfStream { out += translator.finish() }
            streamTranslator = translator
            stream.drainBody(.receivedResponse, Int.max)
            if !out.isEmpty { stream.appendToBody(.receivedResponse, out) }
            // Publish as soon as usage is known: clients often hang up right after [DONE],
            // before the upstream's end of stream arrives.
            // (Each publication is one metadata batch; an unchanged report is not written again.)
            if translator.usage != publishedUsage || (endOfStream && publishedUsage == nil) {
                publishUsage(stream, translator.usage)
            }
            return .continue
        case .translateBody, .translateError:
            guard endOfStream else { return .stopIterationAndBuffer }
            var body: [UInt8] = []
            stream.appendBody(of: .bufferedResponse, to: &body)
            stream.appendBody(of: .receivedResponse, to: &body)
            let translated = translateWhole(body: body)
            publishUsage(stream, finalUsage)
            stream.drainBody(.bufferedResponse, Int.max)
            stream.drainBody(.receivedResponse, Int.max)
            stream.appendToBody(.receivedResponse, translated.body)
            replaceResponseHeaders(stream, translated)
            return .continue
        }
    }

    /// The translated response: a success body, or an error re-shaped for the client.
    private func translateWhole(body: [UInt8]) -> (status: Int, body: [UInt8]) {
        guard let exchange else { return (responseStatus, body) }
        if responseMode == .translateBody {
            do throws(TranslateError) {
                let translated = try exchange.translateResponse(body)
                finalUsage = translated.usage
                return (responseStatus, translated.body)
            } catch {
                let failure = error.gatewayError
                return (Int(failure.status), failure.body(for: exchange.clientAPI))
            }
        }
        let shaped = exchange.translateError(status: responseStatus, body: body)
        return (Int(shaped.status), shaped.body)
    }

    private func replaceResponseHeaders(_ stream: EnvoyHTTPStream, _ translated: (status: Int, body: [UInt8])) {
        stream.setHeader(":status", String(translated.status), in: .response)
        stream.setHeader("content-type", "application/json", in: .response)
        stream.setHeader("content-length", String(translated.body.count), in: .response)
    }

    /// Leaves this attempt's backend and token usage in dynamic metadata (namespace `sluice`) for
    /// the downstream filter (metering, quotas) and access logs.
    ///
    /// Counts the upstream reported beyond `TokenUsage.maxCount` arrive clamped by the readers; the
    /// first such report of an attempt counts once in `upstream_usage_clamped`.
    private func publishUsage(_ stream: EnvoyHTTPStream, _ usage: TokenUsage) {
        publishedUsage = usage
        if usage.isClamped, !countedClampedUsage {
            countedClampedUsage = true
            stream.increment(factory.usageClamped)
            let count = factory.clampedReports.add(1, ordering: .relaxed).newValue
            // A hostile upstream could flood the log: the first few, then one in a thousand.
            if count <= 10 || count.isMultiple(of: 1000) {
                EnvoyLog.warn(
                    "sluice: backend '\(backend?.name ?? "?")' reported token usage that is not a count in 0...\(TokenUsage.maxCount) (negative, fractional, too large or not a number); clamped (\(count) such answers so far)")
            }
        }
        guard let backend, let exchange else { return }
        // One batch per publication: who answered, and the report the downstream filter meters.
        let report = AttemptReport(usage: usage, provider: backend.schema.rawValue, responseModel: exchange.context.upstreamModel)
        var batch = KeyValueBatch()
        batch.add(.backend, backend.name)
        batch.add(.provider, report.provider)
        batch.add(.responseModel, report.responseModel)
        batch.add(.attemptReport, report.encoded)
        stream.setMetadata(batch)
    }

    /// Ends the attempt with an error in the client's shape.
    @inline(never)
    private func fail(_ stream: EnvoyHTTPStream, _ error: TranslateError, api: ClientAPI? = nil) {
        awaitingBody = false
        let api = api ?? exchange?.clientAPI ?? .openAI
        factory.counters.add(factory.attempts, labels: [backend?.name ?? "unknown", "rejected"], on: stream)
        let reply = LocalReply.error(error.gatewayError, for: api, details: "sluice_upstream_rejected")
        stream.sendLocalReply(status: reply.status, headers: ModuleHeaderList(reply.headers), body: reply.body, details: reply.details)
    }
}
