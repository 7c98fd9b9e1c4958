// The upstream `sluice_upstream` filter's policy for one attempt, sans I/O, in the shape of the
// downstream `GatewayStream`: the filter reads what an event needs from Envoy (the attempt
// context, a few header values, the body bytes), calls one method, carries out the actions the
// machine queued in `actions` in order, and returns the status the method returned.
//
// Everything the filter decides per attempt lives here — which backend this host is, the request
// plan and credentials (signing included), the response mode, holding headers for a translated
// body, translating stream chunks, metering usage and publishing the attempt's report, what to
// count and warn about, failing the attempt in the client's shape — so it is unit-tested without
// Envoy or the fake host (`UpstreamAttemptTests`). The filter owns only the reading and the
// carrying out; credential bytes are read by the filter (config values, SDS secrets) when the
// machine asks for a source through the closure an event takes.
//
// Actions go into one buffer the machine keeps and the filter empties after each event, and the
// bytes of a streamed chunk into a scratch array the machine keeps, so an attempt costs no array
// per hook or per chunk once they have grown.
import Synchronization

/// A counter of the upstream filter.
public enum UpstreamCounter: Sendable, Equatable {
    /// `upstream_attempts_total{backend, outcome}`; outcome `ok`, `error` (status >= 400) or
    /// `rejected` (the filter answered itself).
    case attempts
    /// `upstream_usage_clamped` (no labels): attempts whose backend reported token counts beyond
    /// `TokenUsage.maxCount` (a buggy or hostile upstream).
    case usageClamped
}

/// A part of a body as Envoy holds it in a body event.
public enum BodyPart: Sendable, Equatable {
    /// What Envoy buffered in earlier events (after a stop-and-buffer).
    case buffered
    /// What this event delivers.
    case received
}

/// One thing the upstream filter must do for the machine, in order.
public enum UpstreamAction: Sendable {
    /// Remove every value of a request header (lower-case name).
    case removeRequestHeader(String)
    /// Keep a request header this attempt takes off the request (an adapter's
    /// `requestHeaderNames`) for the request's later attempts: Envoy shares one request header map
    /// between attempts, so a fallback to a backend that takes it as a header gets it back
    /// (`requestHeaders(carried:)`).
    case carryRequestHeader(String, String)
    case setRequestHeader(String, String)
    /// Drop the request body Envoy holds (buffered and received) and send these bytes instead.
    case replaceRequestBody([UInt8])
    case setResponseHeader(String, String)
    case removeResponseHeader(String)
    /// Drop the response body Envoy holds (buffered and received) and send these bytes instead.
    case replaceResponseBody([UInt8])
    /// Drop what this response-body event delivered and send these bytes in its place (nothing
    /// is appended when they are empty).
    case replaceReceivedResponseBody([UInt8])
    /// The body of a response that ended with its headers, appended to the buffered body (Envoy
    /// takes a body added while it encodes end-of-stream headers).
    case appendBufferedResponseBody([UInt8])
    /// Answer locally (the status returned with it stops the stream).
    case localReply(LocalReply)
    /// Give the downstream filter this attempt's report (it replaces an earlier one).
    case publishReport(AttemptReport)
    case count(UpstreamCounter, labels: [String])
    case logWarning(String)
}

/// A request's headers as an upstream attempt starts, read from Envoy in one call; names are
/// lower-case.
public protocol CurrentRequestHeaders {
    /// Whether `name` is present (once or more).
    func contains(_ name: String) -> Bool
    /// Whether `name` is present exactly once, with exactly `value`.
    func holds(_ name: String, only value: String) -> Bool
    /// The value of `name` when it is present exactly once; nil when absent or repeated.
    func value(_ name: String) -> String?
    /// Every value of `name`, in order (empty when absent).
    func values(_ name: String) -> [String]
}

extension CurrentRequestHeaders {
    /// `value(_:)` as a list: a reader that cannot list repeated values sees one value or none.
    public func values(_ name: String) -> [String] { value(name).map { [$0] } ?? [] }
}

/// What the upstream filter must do after a request-body event.
public enum UpstreamRequestBodyStep: Sendable, Equatable {
    /// Not waiting for the body: let it pass.
    case pass
    /// Keep buffering.
    case buffer
    /// The body is complete: read it all and call `requestBodyComplete`.
    case read
}

public struct UpstreamAttempt: Sendable {
    /// What every attempt under one filter config shares.
    public final class Shared: Sendable {
        public let config: UpstreamConfig
        /// The hash primitives for request signing (libcrypto inside Envoy).
        public let crypto: SigningCrypto
        /// `upstream_attempts_total` labels per backend name, built once (the counters sum by
        /// label array, so the same array costs nothing per attempt).
        private let labelsByBackend: [String: AttemptLabels]
        /// Answers with clamped usage so far, across attempts, for rate-limiting their warning.
        private let clampedAnswers = Atomic<Int>(0)

        public init(config: UpstreamConfig, crypto: SigningCrypto = .pureSwift) {
            self.config = config
            self.crypto = crypto
            labelsByBackend = Dictionary(
                config.backends.map { ($0.name, AttemptLabels(backend: $0.name)) }, uniquingKeysWith: { first, _ in first })
        }

        /// The label arrays of a backend of this config (built once; any other is built here).
        func labels(of backend: BackendConfig) -> AttemptLabels {
            labelsByBackend[backend.name] ?? AttemptLabels(backend: backend.name)
        }

        /// Counts one more clamped answer; returns how many there were so far.
        func noteClampedAnswer() -> Int { clampedAnswers.add(1, ordering: .relaxed).newValue }
    }

    /// The label arrays of one backend's `upstream_attempts_total` outcomes.
    struct AttemptLabels: Sendable {
        let ok: [String]
        let error: [String]
        let rejected: [String]

        init(backend: String) {
            ok = [backend, "ok"]
            error = [backend, "error"]
            rejected = [backend, "rejected"]
        }

        /// An attempt failed before its backend was known.
        static let unknownBackend = AttemptLabels(backend: "unknown")
    }

    public let shared: Shared
    /// What the filter must carry out after the last event; it empties the buffer afterwards.
    public var actions: [UpstreamAction] = []
    /// Storage the filter may lend for one event (its worker's), for a whole response body read
    /// to be translated; the storage stays here when the event ends, for the filter to take back.
    public var lentBodyStorage: [UInt8] = []

    /// The backend this attempt goes to, once its host is known.
    public private(set) var backend: BackendConfig?
    private var labels = AttemptLabels.unknownBackend
    /// The attempt's exchange, once routed to a known backend.
    public private(set) var exchange: UpstreamExchange?
    /// True while the request body is being buffered (to rewrite or sign it).
    public private(set) var awaitingBody = false
    /// The plan's body handling and signature, for the request body event.
    private var rewritesBody = false
    private var signing: RequestSigning?
    public private(set) var responseMode: ResponseMode = .passthrough
    private var responseStatus = 0
    private var streamTranslator: StreamTranslator?
    /// The bytes of the streamed chunk being translated (reused from chunk to chunk).
    private var chunk: [UInt8] = []
    /// A same-schema response body copied as it passes, to read its usage at the end (bounded).
    private var meteredBody: [UInt8] = []
    private var meteredBodyOverflowed = false
    private var finalUsage = TokenUsage()
    /// The usage last published (a stream publishes again only when it changes).
    public private(set) var publishedUsage: TokenUsage?
    /// Whether this attempt's clamped usage was counted already (streams publish repeatedly).
    private var countedClampedUsage = false

    public static let maxMeteredBodyBytes = 8 * 1024 * 1024

    public init(shared: Shared) { self.shared = shared }

    // MARK: - Request

    /// The request's headers.
    /// - Parameters:
    ///   - context: What the downstream filter left for upstream attempts; nil when the request
    ///     was not routed by `sluice` (it then passes untouched).
    ///   - hostBackend: The backend named by the upstream host's metadata, if any.
    ///   - headers: The request headers as the attempt starts: the filter reads the header map
    ///     once, and only what must change is edited (each edit is a call into Envoy).
    ///   - nowSeconds: Unix seconds (the translated answer's `created`).
    ///   - credential: The text of a credential source (a config value, or an SDS secret read
    ///     fresh so rotation applies); nil when it has none.
    ///   - carried: The request headers earlier attempts of this request took off the request
    ///     (`UpstreamAction.carryRequestHeader`); almost always none.
    ///   - endOfStream: Whether the request has no body.
    public mutating func requestHeaders(
        context: AttemptContext?, hostBackend: @autoclosure () -> String?, headers: any CurrentRequestHeaders,
        endOfStream: Bool, nowSeconds: @autoclosure () -> Int64, credential: (CredentialSource) -> String?,
        carried: [(name: String, value: String)] = []
    ) -> GatewayStatus {
        // Not an LLM call routed by `sluice` (or the filter is missing downstream): forward as is.
        guard let context else { return .continue }
        // Routing an attempt queues a dozen header edits; one allocation holds them and every
        // later event's actions.
        actions.reserveCapacity(16)
        let endpoint = context.endpoint
        // Which backend this attempt's host belongs to (endpoint metadata), or the only one.
        guard let backend = shared.config.backend(named: hostBackend()) else {
            fail(
                TranslateError(
                    status: 500, code: "backend_unknown",
                    message: "The gateway cannot tell which backend this upstream host belongs to."),
                api: endpoint.clientAPI)
            return .stop
        }
        self.backend = backend
        labels = shared.labels(of: backend)
        var exchange = UpstreamExchange(
            backend: backend, clientAPI: endpoint.clientAPI, endpoint: endpoint, requestModel: context.model,
            stream: context.stream, includeUsage: context.includeUsage, created: nowSeconds(),
            requestID: headers.value("x-request-id") ?? "sluice")
        if endpoint.readsMultipart { exchange.noteRequestContentType(headers.value("content-type")) }
        // Only an adapter that names request headers (or a request an earlier attempt took one
        // from) reads more: the common path checks two empty arrays.
        if !exchange.requestHeaderNames.isEmpty || !carried.isEmpty {
            takeRequestHeaders(into: &exchange, from: headers, carried: carried)
        }
        self.exchange = exchange
        let plan: UpstreamRequestPlan
        do throws(TranslateError) {
            plan = try exchange.requestPlan()
        } catch {
            fail(error)
            return .stop
        }
        // Header edits persist into a retry's headers (Envoy shares the request header map between
        // attempts): every attempt removes whatever credential header is there (a client's own
        // key, an earlier attempt's provider key) and sets its own. Only present headers are
        // removed and only changed values set: on a first attempt to an OpenAI-shaped backend
        // that is the route header and the credential, two calls instead of a dozen.
        let credentialName: String?
        if case .header(let scheme) = plan.credential { credentialName = scheme.name } else { credentialName = nil }
        for name in UpstreamRequestPlan.credentialHeaders where name != credentialName && headers.contains(name) {
            actions.append(.removeRequestHeader(name))
        }
        if headers.contains("x-sluice-route") { actions.append(.removeRequestHeader("x-sluice-route")) }
        // The load balancer has read the hand-over by now (it picks before upstream filters run).
        if headers.contains("x-sluice-epp") { actions.append(.removeRequestHeader("x-sluice-epp")) }
        if let method = plan.method { setRequestHeader(":method", method, in: headers) }
        setRequestHeader(":path", plan.path, in: headers)
        if let host = backend.host { setRequestHeader(":authority", host, in: headers) }
        for field in plan.setHeaders { setRequestHeader(field.name, field.value, in: headers) }
        switch plan.credential {
        case .none:
            break
        case .header(let scheme):
            guard let source = scheme.source, let secret = credential(source), !secret.isEmpty else {
                fail(.credentialMissing(backend: backend.name))
                return .stop
            }
            setRequestHeader(scheme.name, scheme.prefix + secret, in: headers)
        case .signature(let signing):
            // Signed in the body event, over the final body.
            self.signing = signing
        }
        rewritesBody = plan.rewritesBody
        guard plan.needsBody else {
            // Header edits persist across attempts while Envoy replays the client's own body: a
            // retry after an attempt that rewrote the body still carries that attempt's length.
            setRequestHeader("content-length", String(context.requestBodyBytes), in: headers)
            return .continue
        }
        if endOfStream {
            fail(.invalidBody("This endpoint needs a JSON request body."))
            return .stop
        }
        awaitingBody = true
        return .stop
    }

    /// Hands the adapter the request headers it names (repeated values joined with ", ", as HTTP
    /// lists combine), each from the request or, when an earlier attempt took it off, from
    /// `carried`; takes them off the request, keeping them for later attempts; and puts back a
    /// carried header this adapter does not take.
    private mutating func takeRequestHeaders(
        into exchange: inout UpstreamExchange, from headers: any CurrentRequestHeaders, carried: [(name: String, value: String)]
    ) {
        let names = exchange.requestHeaderNames
        for name in names {
            let present = headers.values(name)
            let earlier = carried.first { $0.name == name }?.value
            guard let value = present.isEmpty ? earlier : present.joined(separator: ", ") else { continue }
            exchange.noteRequestHeader(name: name, value: value)
            if !present.isEmpty {
                actions.append(.removeRequestHeader(name))
                if earlier == nil { actions.append(.carryRequestHeader(name, value)) }
            }
        }
        for field in carried where !names.contains(field.name) && !headers.contains(field.name) {
            actions.append(.setRequestHeader(field.name, field.value))
        }
    }

    /// A request-body event.
    public func requestBody(endOfStream: Bool) -> UpstreamRequestBodyStep {
        guard awaitingBody, exchange != nil else { return .pass }
        return endOfStream ? .read : .buffer
    }

    /// The complete request body (what Envoy buffered and what the last event delivered): the
    /// body to send, its length, and the signature over it.
    /// - Parameters:
    ///   - body: The complete request body, as the client sent it.
    ///   - header: Reads a request header as it is now (signing covers the final `:method`,
    ///     `:authority` and `:path`).
    ///   - nowSeconds: The signing time.
    ///   - credential: As in `requestHeaders`.
    public mutating func requestBodyComplete(
        _ body: [UInt8], header: (String) -> String?, nowSeconds: @autoclosure () -> Int64,
        credential: (CredentialSource) -> String?
    ) -> GatewayStatus {
        guard awaitingBody, exchange != nil else { return .continue }
        awaitingBody = false
        var sent = body
        if rewritesBody {
            do throws(TranslateError) {
                // In place: the exchange may note what the response translation needs.
                sent = try exchange?.translateRequest(body) ?? body
            } catch {
                fail(error)
                return .stopNoBuffer
            }
            actions.append(.replaceRequestBody(sent))
        }
        actions.append(.setRequestHeader("content-length", String(sent.count)))
        if let signing, let exchange {
            // The bytes of the sources the scheme names, read fresh (SDS rotation applies).
            let credentials = signing.credentialSources.map { source in
                source.flatMap { credential($0) }.map { Array($0.utf8) }
            }
            let request = SignableRequest(
                method: header(":method") ?? "POST", host: header(":authority") ?? "", path: header(":path") ?? "",
                body: sent)
            do throws(TranslateError) {
                let headers = try exchange.signatureHeaders(
                    signing, request: request, credentials: credentials, unixSeconds: nowSeconds(), crypto: shared.crypto)
                for header in headers { actions.append(.setRequestHeader(header.name, header.value)) }
            } catch {
                fail(error)
                return .stopNoBuffer
            }
        }
        return .continue
    }

    // MARK: - Response

    /// The response headers. The mode follows from the status and the client's request alone
    /// (`UpstreamExchange.responseMode`), so no content type is read.
    /// - Parameters:
    ///   - status: `:status` (0 when absent or not a number).
    ///   - header: Reads a response header by lower-case name (only those the backend's adapter
    ///     lists are asked for).
    ///   - endOfStream: Whether the response has no body.
    public mutating func responseHeaders(status: @autoclosure () -> Int, header: (String) -> String?, endOfStream: Bool)
        -> GatewayStatus
    {
        guard let names = exchange?.responseHeaderNames else { return .continue }
        // The headers this backend's adapter reads (a request id, an error type), by the names it lists.
        for name in names {
            if let value = header(name) { exchange?.noteResponseHeader(name: name, value: value) }
        }
        guard let exchange else { return .continue }
        responseStatus = status()
        responseMode = exchange.responseMode(status: responseStatus)
        actions.append(.count(.attempts, labels: responseStatus >= 400 ? labels.error : labels.ok))
        switch responseMode {
        case .passthrough:
            return .continue
        case .passthroughMetered:
            if endOfStream { publishAnswerUsage(of: []) }
            return .continue
        case .passthroughReported:
            publishAnswerUsage(of: [])
            return .continue
        case .translateStream:
            do throws(TranslateError) {
                streamTranslator = try exchange.makeStreamTranslator()
            } catch {
                responseMode = .translateError
                return holdForBody(endOfStream: endOfStream)
            }
            actions.append(.setResponseHeader("content-type", exchange.clientContentType(.translateStream)))
            actions.append(.removeResponseHeader("content-length"))
            return .continue
        case .translateBody, .translateError:
            return holdForBody(endOfStream: endOfStream)
        }
    }

    /// Headers wait until the whole body is translated (its length changes). A response that
    /// ends with its headers still owes the client an answer in its API: a 2xx without a body is a
    /// broken answer (502), an error without a body gets the client's error shape.
    private mutating func holdForBody(endOfStream: Bool) -> GatewayStatus {
        guard endOfStream else { return .stop }
        let translated = translateWhole(body: [])
        publish(finalUsage)
        actions.append(.appendBufferedResponseBody(translated.body))
        replaceResponseHeaders(translated)
        return .continue
    }

    /// A response-body event.
    /// - Parameters:
    ///   - endOfStream: Whether this event ends the response.
    ///   - bodySize: The size of a part of the body Envoy holds.
    ///   - read: Appends the bytes of a part of the body Envoy holds to the array it is given.
    public mutating func responseBody(
        endOfStream: Bool, bodySize: (BodyPart) -> Int, read: (BodyPart, inout [UInt8]) -> Void
    ) -> GatewayStatus {
        switch responseMode {
        case .passthrough, .passthroughReported:
            return .continue
        case .passthroughMetered:
            if !meteredBodyOverflowed {
                if meteredBody.count + bodySize(.received) > Self.maxMeteredBodyBytes {
                    meteredBodyOverflowed = true
                    meteredBody = []
                } else {
                    read(.received, &meteredBody)
                }
            }
            if endOfStream {
                publishAnswerUsage(of: meteredBodyOverflowed ? nil : meteredBody)
                meteredBody = []
            }
            return .continue
        case .translateStream:
            // Taken out while it works, so its buffers are uniquely referenced and grow in place.
            guard var translator = streamTranslator.take() else { return .continue }
            defer { streamTranslator = translator }
            chunk.removeAll(keepingCapacity: true)
            read(.received, &chunk)
            var out = translator.feed(chunk)
            if endOfStream {
                let rest = translator.finish()
                if !rest.isEmpty { out += rest }
            }
            actions.append(.replaceReceivedResponseBody(out))
            // Publish as soon as usage is known: clients often hang up right after [DONE], before
            // the upstream's end of stream arrives. An unchanged report is not written again.
            if translator.usage != publishedUsage || (endOfStream && publishedUsage == nil) {
                publish(translator.usage)
            }
            return .continue
        case .translateBody, .translateError:
            guard endOfStream else { return .stopAndBuffer }
            var body: [UInt8] = []
            swap(&body, &lentBodyStorage)
            body.removeAll(keepingCapacity: true)
            body.reserveCapacity(bodySize(.buffered) + bodySize(.received))
            read(.buffered, &body)
            read(.received, &body)
            let translated = translateWhole(body: body)
            lentBodyStorage = body
            publish(finalUsage)
            actions.append(.replaceResponseBody(translated.body))
            replaceResponseHeaders(translated)
            return .continue
        }
    }

    /// The translated response: a success body, or an error re-shaped for the client.
    private mutating func translateWhole(body: [UInt8]) -> (status: Int, body: [UInt8]) {
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

    private mutating func replaceResponseHeaders(_ translated: (status: Int, body: [UInt8])) {
        actions.append(.setResponseHeader(":status", String(translated.status)))
        actions.append(.setResponseHeader("content-type", "application/json"))
        actions.append(.setResponseHeader("content-length", String(translated.body.count)))
    }

    // MARK: - Helpers

    /// Gives the downstream filter this attempt's backend and token usage (metering, quotas,
    /// access logs).
    ///
    /// Counts the upstream reported beyond `TokenUsage.maxCount` arrive clamped by the readers; the
    /// first such report of an attempt counts once in `upstream_usage_clamped`.
    /// Publishes the usage of a same-schema answer that passed through (`body`: its bounded copy,
    /// nil when it outgrew the bound).
    private mutating func publishAnswerUsage(of body: [UInt8]?) {
        guard let exchange else { return }
        if exchange.endpoint.isMedia {
            let read = exchange.mediaUsage(ofAnswer: body ?? [])
            publish(read.usage, unit: read.unit)
        } else {
            publish(body.map { exchange.usage(ofPassthrough: $0) } ?? TokenUsage())
        }
    }

    private mutating func publish(_ usage: TokenUsage, unit: UsageUnit = .tokens) {
        publishedUsage = usage
        if usage.isClamped, !countedClampedUsage {
            countedClampedUsage = true
            actions.append(.count(.usageClamped, labels: []))
            let count = shared.noteClampedAnswer()
            // A hostile upstream could flood the log: the first few, then one in a thousand.
            if count <= 10 || count.isMultiple(of: 1000) {
                actions.append(
                    .logWarning(
                        "sluice: backend '\(backend?.name ?? "?")' reported token usage that is not a count in 0...\(TokenUsage.maxCount) (negative, fractional, too large or not a number); clamped (\(count) such answers so far)"
                    ))
            }
        }
        guard let backend, let exchange else { return }
        actions.append(
            .publishReport(
                AttemptReport(
                    usage: usage, backend: backend.name, provider: backend.schema.rawValue,
                    responseModel: exchange.context.upstreamModel, unit: unit)))
    }

    /// Sets a request header unless it already holds exactly `value` as its only value.
    private mutating func setRequestHeader(_ name: String, _ value: String, in headers: any CurrentRequestHeaders) {
        if !headers.holds(name, only: value) { actions.append(.setRequestHeader(name, value)) }
    }

    /// Ends the attempt with an error in the client's shape.
    @inline(never)
    private mutating func fail(_ error: TranslateError, api: ClientAPI? = nil) {
        awaitingBody = false
        let api = api ?? exchange?.clientAPI ?? .openAI
        actions.append(.count(.attempts, labels: labels.rejected))
        actions.append(.localReply(LocalReply.error(error.gatewayError, for: api, details: "sluice_upstream_rejected")))
    }
}
