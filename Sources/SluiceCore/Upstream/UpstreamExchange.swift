// One upstream attempt, sans I/O: the upstream filter (`sluice_upstream`, one instance per
// attempt, on the backend's cluster) reads headers/body from Envoy, asks this type what to send
// and how to read the answer, and carries that out. A retry that lands on another backend gets a
// fresh exchange configured for that backend, which is what makes cross-provider fallback work.
//
// What differs between backends is the adapter's (`ProviderAdapter`, one per backend schema, in
// `Providers/`); this type keeps the attempt's state and what is the same for every backend: the
// response mode, and the hub-to-client step for Anthropic clients.

/// How the client's request must change for this backend.
public struct UpstreamRequestPlan: Sendable, Equatable {
    /// The `:method` to send, when it is not the client's: nil keeps the client's (`POST` for
    /// every endpoint the gateway routes), and costs the filter nothing.
    public var method: String?
    /// The `:path` to send.
    public var path: String
    /// Headers to set (non-secret: versions, content type).
    public var setHeaders: [(name: String, value: String)]
    /// How the request is authenticated.
    public var credential: CredentialApplication
    /// Whether the body must be rewritten (translation, model override, usage forcing).
    public var rewritesBody: Bool

    /// `content-type: application/json`, the header most plans set, made once: a plan is made
    /// per attempt, and a literal array would be allocated every time.
    public static let jsonContentType: [(name: String, value: String)] = [("content-type", "application/json")]

    public init(
        method: String? = nil, path: String, setHeaders: [(name: String, value: String)],
        credential: CredentialApplication, rewritesBody: Bool
    ) {
        self.method = method
        self.path = path
        self.setHeaders = setHeaders
        self.credential = credential
        self.rewritesBody = rewritesBody
    }

    /// The header that carries the backend's secret and the text before it ("Bearer "), when the
    /// credential is a header.
    public var credentialHeader: (name: String, prefix: String)? {
        guard case .header(let header) = credential else { return nil }
        return (header.name, header.prefix)
    }

    /// Whether the body must be buffered before the request can go: to rewrite it, or to sign it.
    public var needsBody: Bool {
        if rewritesBody { return true }
        if case .signature = credential { return true }
        return false
    }

    public static func == (lhs: UpstreamRequestPlan, rhs: UpstreamRequestPlan) -> Bool {
        lhs.method == rhs.method && lhs.path == rhs.path && lhs.rewritesBody == rhs.rewritesBody
            && lhs.setHeaders.elementsEqual(rhs.setHeaders, by: { $0.name == $1.name && $0.value == $1.value })
            && lhs.credential == rhs.credential
    }

    /// Every header any backend uses for credentials (the union the adapters declare): removed
    /// before this backend's is set, so a client's own key, or an earlier attempt's provider key,
    /// never reaches this provider.
    public static let credentialHeaders: [String] = {
        var names: [String] = []
        for schema in BackendSchema.allCases {
            for name in schema.adapter.credentialHeaderNames where !names.contains(name) { names.append(name) }
        }
        return names
    }()
}

/// What to do with the backend's response.
public enum ResponseMode: Sendable, Equatable {
    /// Same schema as the client: pass through untouched.
    case passthrough
    /// Same schema, not streamed: pass through, keeping a bounded copy to read token usage at the end.
    case passthroughMetered
    /// Same schema: pass through untouched; the usage was counted from the request (speech) and
    /// is reported with the response headers.
    case passthroughReported
    /// Buffer the whole body, then translate it (non-streaming success).
    case translateBody
    /// Translate chunk by chunk as it arrives (streaming success).
    case translateStream
    /// Buffer the whole error body, then re-shape it for the client with the same status.
    case translateError
}

public struct UpstreamExchange: Sendable {
    /// The backend schema's adapter (`BackendSchema.adapter`: a metatype, so no box per attempt).
    private let adapter: any ProviderAdapter.Type
    /// The attempt's state, handed to the adapter.
    public private(set) var attempt: ProviderAttempt

    public init(backend: BackendConfig, clientAPI: ClientAPI, endpoint: Endpoint, requestModel: String, stream: Bool,
                includeUsage: Bool, created: Int64, requestID: @autoclosure () -> String) {
        adapter = backend.schema.adapter
        attempt = ProviderAttempt(
            backend: backend, clientAPI: clientAPI, endpoint: endpoint, requestModel: requestModel, stream: stream,
            includeUsage: includeUsage, created: created, requestID: requestID())
    }

    public var backend: BackendConfig { attempt.backend }
    public var clientAPI: ClientAPI { attempt.clientAPI }
    public var endpoint: Endpoint { attempt.endpoint }
    public var context: TranslationContext { attempt.context }

    /// Whether the backend speaks the client's own API, so bodies pass through.
    public var sameSchema: Bool { attempt.sameSchema }

    // MARK: - Request

    public func requestPlan() throws(TranslateError) -> UpstreamRequestPlan {
        if attempt.endpoint.countsTokens { return try TokenCounting.requestPlan(for: attempt, adapter: adapter) }
        if attempt.endpoint.isMedia { return try MediaEndpoints.requestPlan(for: attempt, adapter: adapter) }
        if attempt.endpoint.reranks { return try RerankEndpoint.requestPlan(for: attempt, adapter: adapter) }
        return try adapter.requestPlan(for: attempt)
    }

    /// The body to send for the client's `body`.
    public mutating func translateRequest(_ body: [UInt8]) throws(TranslateError) -> [UInt8] {
        if attempt.endpoint.countsTokens { return try TokenCounting.translateRequest(body, attempt: &attempt, adapter: adapter) }
        if attempt.endpoint.isMedia { return try MediaEndpoints.translateRequest(body, attempt: &attempt, adapter: adapter) }
        if attempt.endpoint.reranks { return try RerankEndpoint.translateRequest(body, attempt: &attempt, adapter: adapter) }
        return try adapter.translateRequest(body, attempt: &attempt)
    }

    /// The headers that sign the final request, for a plan whose credential is a signature.
    /// - Parameters:
    ///   - signing: The plan's `CredentialApplication.signature`.
    ///   - request: Method, `:authority`, `:path` (with query) and body exactly as sent.
    ///   - credentials: The bytes of `signing.credentialSources`, in order (nil: the source gave none).
    ///   - unixSeconds: The signing time.
    ///   - crypto: The hash primitives (libcrypto inside Envoy).
    /// - Throws: `TranslateError` 500 `backend_credential_missing` when a required credential is absent.
    public func signatureHeaders(
        _ signing: RequestSigning, request: SignableRequest, credentials: [[UInt8]?], unixSeconds: Int64,
        crypto: SigningCrypto = .pureSwift
    ) throws(TranslateError) -> [(name: String, value: String)] {
        try signing.headers(
            for: request, credentials: credentials, unixSeconds: unixSeconds, crypto: crypto, backend: backend.name)
    }

    // MARK: - Response

    /// The response headers this backend's adapter reads (lower-case); pass each one the backend
    /// sent to `noteResponseHeader` before translating the response.
    public var responseHeaderNames: [String] { adapter.responseHeaderNames }

    /// Records a response header named in `responseHeaderNames` (e.g. a request id the body lacks).
    public mutating func noteResponseHeader(name: String, value: String) {
        adapter.noteResponseHeader(name: name, value: value, attempt: &attempt)
    }

    /// `responseMode(status:)`: the content type does not change the mode.
    public func responseMode(status: Int, contentType: String?) -> ResponseMode { responseMode(status: status) }

    /// The mode for an answer with `status`: the client's request (schema, streamed or not)
    /// decides the rest, so the upstream filter reads no other response header for it.
    public func responseMode(status: Int) -> ResponseMode {
        if endpoint.isMedia { return MediaEndpoints.responseMode(status: status, endpoint: endpoint) }
        if sameSchema {
            if status >= 400 { return adapter.passesNativeErrorsThrough ? .passthrough : .translateError }
            // Same-schema streams go through a usage watcher that passes the bytes on.
            return context.stream ? .translateStream : .passthroughMetered
        }
        if status >= 400 { return .translateError }
        return context.stream ? .translateStream : .translateBody
    }

    /// The client's request headers this backend's adapter reads (lower-case; usually none). Pass
    /// each one present to `noteRequestHeader` before asking for the plan.
    public var requestHeaderNames: [String] { adapter.requestHeaderNames }

    /// Records a request header named in `requestHeaderNames` for the adapter's translation.
    public mutating func noteRequestHeader(name: String, value: String) {
        attempt.requestHeaders.append((name, value))
    }

    /// Notes the client's `content-type` for an endpoint whose body is a form (its boundary).
    public mutating func noteRequestContentType(_ value: String?) {
        if endpoint.readsMultipart { attempt.requestContentType = value }
    }

    /// The usage of an images or audio answer that passed through (or was counted from the
    /// request), and its unit.
    public func mediaUsage(ofAnswer body: [UInt8]) -> (usage: TokenUsage, unit: UsageUnit) {
        if let counted = attempt.requestUsage { return (counted, .characters) }
        return MediaEndpoints.usage(ofAnswer: body, endpoint: endpoint)
    }

    /// Token usage of a same-schema response body that passed through.
    public func usage(ofPassthrough body: [UInt8]) -> TokenUsage {
        adapter.usage(ofPassthrough: body, attempt: attempt)
    }

    /// The content type of what the client receives for `mode`.
    public func clientContentType(_ mode: ResponseMode) -> String {
        mode == .translateStream ? "text/event-stream" : "application/json"
    }

    /// Translates a complete 2xx body to the client's API. Returns the body and the usage it reports.
    public func translateResponse(_ body: [UInt8]) throws(TranslateError) -> (body: [UInt8], usage: TokenUsage) {
        // A count is free: no usage.
        if endpoint.countsTokens { return (try TokenCounting.clientAnswer(body, attempt: attempt, adapter: adapter), TokenUsage()) }
        if endpoint.reranks { return try RerankEndpoint.clientAnswer(body, attempt: attempt, adapter: adapter) }
        let hub = try adapter.hubResponse(body, attempt: attempt)
        switch clientAPI {
        case .openAI, .cohere:
            guard endpoint == .responses else { return hub }
            return (try attempt.responsesAnswer(fromHub: hub.body), hub.usage)
        case .anthropic:
            return (try AnthropicTranslator.anthropicResponse(fromOpenAIChat: hub.body, context: context), hub.usage)
        }
    }

    /// Re-shapes a backend error body (any status >= 400) for the client, keeping the status. The
    /// response headers in `responseHeaderNames` must have been noted first.
    public func translateError(status: Int, body: [UInt8]) -> (status: UInt32, body: [UInt8]) {
        let error =
            endpoint.reranks
            ? RerankEndpoint.gatewayError(status: UInt32(clamping: status), body: body, attempt: attempt)
            : adapter.gatewayError(status: UInt32(clamping: status), body: body, attempt: attempt)
        return (error.status, error.body(for: clientAPI))
    }

    /// A streaming translator from this backend's stream to the client's API (for a same-schema
    /// stream, a watcher that reads usage and passes the bytes on).
    public func makeStreamTranslator() throws(TranslateError) -> StreamTranslator {
        let backendStage = try adapter.streamStage(for: attempt)
        var clientStage: StreamTranslator.ClientStage?
        if !sameSchema {
            if clientAPI == .anthropic {
                clientStage = .anthropic(OpenAIToAnthropicStream(context: context))
            } else if endpoint == .responses {
                clientStage = .responses(OpenAIToResponsesStream(echo: attempt.responsesEcho ?? ResponsesEcho(), context: context))
            }
        }
        return StreamTranslator(backend: backendStage, client: clientStage)
    }
}

/// A streaming response translation: the backend's stream to OpenAI SSE (the hub), then, for
/// Anthropic and Responses clients, the hub stream to their events. Only partial frames are
/// buffered.
public struct StreamTranslator: Sendable {
    /// The backend-to-hub stage, one case per stream format (an adapter's `streamStage` picks
    /// one). The stages are kept in an enum rather than an `any` existential: they hold a whole
    /// `TranslationContext`, more than an existential's three inline words, so an existential
    /// would cost a heap box per streamed attempt. A backend whose stream is OpenAI SSE needs no
    /// new case; a new stream format adds one here.
    public enum BackendStage: Sendable {
        /// OpenAI and OpenAI-compatible streams are already hub SSE; the filter reads usage.
        case openAI(OpenAIStreamUsageFilter)
        /// A Responses stream to a Responses client (OpenAI, Azure): passed on, read for usage.
        case openAIResponses(ResponsesStreamUsageWatcher)
        /// An Anthropic stream to an Anthropic client: passed on, translated only to read usage.
        case anthropicPassthrough(AnthropicToOpenAIStream)
        case anthropic(AnthropicToOpenAIStream)
        case gemini(GeminiStream)
        case bedrock(BedrockConverseStreamTranslator)
        /// Bedrock InvokeModel's event stream of Anthropic events: Anthropic SSE to an Anthropic client,
        /// the hub to the rest.
        case bedrockInvoke(BedrockInvokeStream)
    }

    /// The hub-to-client stage of a client that does not speak the hub's chat SSE.
    public enum ClientStage: Sendable {
        case anthropic(OpenAIToAnthropicStream)
        case responses(OpenAIToResponsesStream)

        mutating func feed(_ hub: [UInt8]) -> [UInt8] {
            switch self {
            case .anthropic(var stage):
                defer { self = .anthropic(stage) }
                return stage.feed(hub)
            case .responses(var stage):
                defer { self = .responses(stage) }
                return stage.feed(hub)
            }
        }

        mutating func finish() -> [UInt8] {
            switch self {
            case .anthropic(var stage):
                defer { self = .anthropic(stage) }
                return stage.finish()
            case .responses(var stage):
                defer { self = .responses(stage) }
                return stage.finish()
            }
        }
    }

    var backend: BackendStage
    var client: ClientStage?

    init(backend: BackendStage, client: ClientStage?) {
        self.backend = backend
        self.client = client
    }

    /// Translates one chunk of the backend's body; returns the client bytes ready so far.
    public mutating func feed(_ chunk: [UInt8]) -> [UInt8] {
        let hub: [UInt8]
        switch backend {
        case .openAI(var stage):
            hub = stage.feed(chunk)
            backend = .openAI(stage)
        case .openAIResponses(var stage):
            stage.feed(chunk)
            backend = .openAIResponses(stage)
            return chunk
        case .anthropicPassthrough(var stage):
            _ = stage.feed(chunk)
            backend = .anthropicPassthrough(stage)
            return chunk
        case .anthropic(var stage):
            hub = stage.feed(chunk)
            backend = .anthropic(stage)
        case .gemini(var stage):
            hub = stage.feed(chunk)
            backend = .gemini(stage)
        case .bedrock(var stage):
            hub = stage.feed(chunk)
            backend = .bedrock(stage)
        case .bedrockInvoke(var stage):
            hub = stage.feed(chunk)
            backend = .bedrockInvoke(stage)
        }
        guard var client else { return hub }
        defer { self.client = client }
        return client.feed(hub)
    }

    /// End of the backend's stream: flushes what is left.
    public mutating func finish() -> [UInt8] {
        var hub: [UInt8] = []
        switch backend {
        case .openAI(var stage):
            hub = stage.finish()
            backend = .openAI(stage)
        case .openAIResponses(var stage):
            stage.finish()
            backend = .openAIResponses(stage)
            return []
        case .anthropicPassthrough(var stage):
            _ = stage.finish()
            backend = .anthropicPassthrough(stage)
            return []
        case .anthropic(var stage):
            hub = stage.finish()
            backend = .anthropic(stage)
        case .gemini(var stage):
            hub = stage.finish()
            backend = .gemini(stage)
        case .bedrock(var stage):
            hub = stage.finish()
            backend = .bedrock(stage)
        case .bedrockInvoke(var stage):
            hub = stage.finish()
            backend = .bedrockInvoke(stage)
        }
        guard var client else { return hub }
        defer { self.client = client }
        var out = hub.isEmpty ? [] : client.feed(hub)
        out += client.finish()
        return out
    }

    /// Token usage reported by the stream so far.
    public var usage: TokenUsage {
        switch backend {
        case .openAI(let stage): stage.usage ?? TokenUsage()
        case .openAIResponses(let stage): stage.usage ?? TokenUsage()
        case .anthropicPassthrough(let stage): stage.usage
        case .anthropic(let stage): stage.usage
        case .gemini(let stage): stage.usage
        case .bedrock(let stage): stage.usage
        case .bedrockInvoke(let stage): stage.usage
        }
    }
}

/// RFC 3986 percent-encoding for the pieces of paths we build from config and model names.
public enum PercentEncoding {
    /// Encodes everything but unreserved characters (so ':' and '/' in model ids are escaped).
    public static func pathSegment(_ text: String) -> String { encode(text) }

    public static func queryValue(_ text: String) -> String { encode(text) }

    private static func encode(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        let hex = Array("0123456789ABCDEF".utf8)
        for byte in text.utf8 {
            let unreserved = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || (byte >= 0x30 && byte <= 0x39)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "~")
            if unreserved {
                out.append(byte)
            } else {
                out.append(UInt8(ascii: "%"))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
