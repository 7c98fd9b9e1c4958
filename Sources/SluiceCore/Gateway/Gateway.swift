// The gateway's request-header decision, sans I/O: the Envoy binding reads headers, calls
// `decide`, and carries out the returned decision.

/// What the API path asks for.
public enum Endpoint: Sendable, Equatable, CaseIterable {
    case listModels
    case chatCompletions
    case completions
    case embeddings
    case anthropicMessages
    /// OpenAI's Responses API (`POST /v1/responses`): OpenAI's error shape, its own request,
    /// answer and stream shapes (`ResponsesTranslator`).
    case responses
    /// `POST /v1/responses/input_tokens`: OpenAI's count of a Responses request's input.
    case responsesInputTokens
    /// `POST /v1/messages/count_tokens`: Anthropic's count of a Messages request's input.
    case anthropicCountTokens
    /// `POST /v1/images/generations` (JSON; MediaEndpoints.swift).
    case imagesGenerations
    /// `POST /v1/audio/speech` (JSON; the answer is audio, streamed through).
    case audioSpeech
    /// `POST /v1/audio/transcriptions` (multipart/form-data).
    case audioTranscriptions
    /// `POST /v1/audio/translations` (multipart/form-data).
    case audioTranslations
    /// `POST /v1/rerank`: the Jina/vLLM rerank API (OpenAI's error shape); see `RerankEndpoint`.
    case rerank
    /// `POST /cohere/v2/rerank`: Cohere's v2 rerank API, with Cohere's error shape.
    case cohereRerank
    case other

    /// Classifies `:path` (query string ignored) and `:method`.
    public static func classify(method: [UInt8], path: [UInt8]) -> Endpoint {
        classify(method: method[...], path: path[...])
    }

    /// Classifies `:path` and `:method` read into slices of one buffer.
    public static func classify(method: ArraySlice<UInt8>, path: ArraySlice<UInt8>) -> Endpoint {
        var end = path.firstIndex(where: { $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#") }) ?? path.endIndex
        // Tolerate one trailing slash, as OpenAI does.
        if end - path.startIndex > 1, path[end - 1] == UInt8(ascii: "/") { end -= 1 }
        let route = path[path.startIndex..<end]
        let isGet = method.elementsEqual("GET".utf8)
        let isPost = method.elementsEqual("POST".utf8)
        if isGet, route.elementsEqual("/v1/models".utf8) { return .listModels }
        if isPost {
            if route.elementsEqual("/v1/chat/completions".utf8) { return .chatCompletions }
            if route.elementsEqual("/v1/completions".utf8) { return .completions }
            if route.elementsEqual("/v1/embeddings".utf8) { return .embeddings }
            if route.elementsEqual("/v1/messages".utf8) { return .anthropicMessages }
            if route.elementsEqual("/v1/responses".utf8) { return .responses }
            if route.elementsEqual("/v1/responses/input_tokens".utf8) { return .responsesInputTokens }
            if route.elementsEqual("/v1/messages/count_tokens".utf8) { return .anthropicCountTokens }
            if let media = Endpoint.classifyMedia(route) { return media }
            if route.elementsEqual("/v1/rerank".utf8) { return .rerank }
            if route.elementsEqual("/cohere/v2/rerank".utf8) { return .cohereRerank }
        }
        return .other
    }

    /// The error shape a client of this endpoint understands.
    public var clientAPI: ClientAPI {
        switch self {
        case .anthropicMessages, .anthropicCountTokens: .anthropic
        case .cohereRerank: .cohere
        default: .openAI
        }
    }

    /// Whether the gateway must read the body (to find `model`) before routing.
    public var routesOnBody: Bool {
        switch self {
        case .chatCompletions, .completions, .embeddings, .anthropicMessages, .responses, .responsesInputTokens,
            .anthropicCountTokens, .imagesGenerations, .audioSpeech, .audioTranscriptions, .audioTranslations, .rerank,
            .cohereRerank:
            true
        case .listModels, .other: false
        }
    }

    /// Stable name, used in dynamic metadata and metrics (`gen_ai.operation.name`-like).
    public var name: String {
        switch self {
        case .listModels: "models"
        case .chatCompletions: "chat_completions"
        case .completions: "completions"
        case .embeddings: "embeddings"
        case .anthropicMessages: "messages"
        case .responses: "responses"
        case .responsesInputTokens: "responses_input_tokens"
        case .anthropicCountTokens: "messages_count_tokens"
        case .imagesGenerations: "images_generations"
        case .audioSpeech: "audio_speech"
        case .audioTranscriptions: "audio_transcriptions"
        case .audioTranslations: "audio_translations"
        case .rerank: "rerank"
        case .cohereRerank: "cohere_rerank"
        case .other: "other"
        }
    }

    /// `gen_ai.operation.name` of the OpenTelemetry GenAI conventions.
    public var operationName: String {
        switch self {
        case .chatCompletions, .anthropicMessages, .responses: "chat"
        case .completions: "text_completion"
        case .embeddings: "embeddings"
        case .listModels: "list_models"
        case .responsesInputTokens, .anthropicCountTokens: "count_tokens"
        case .imagesGenerations, .audioSpeech, .audioTranscriptions, .audioTranslations: mediaOperationName
        // The GenAI conventions name no rerank operation; "rerank" is the custom value they allow.
        case .rerank, .cohereRerank: "rerank"
        case .other: "other"
        }
    }

    public init?(name: String) {
        switch name {
        case "models": self = .listModels
        case "chat_completions": self = .chatCompletions
        case "completions": self = .completions
        case "embeddings": self = .embeddings
        case "messages": self = .anthropicMessages
        case "responses": self = .responses
        case "responses_input_tokens": self = .responsesInputTokens
        case "messages_count_tokens": self = .anthropicCountTokens
        case "images_generations": self = .imagesGenerations
        case "audio_speech": self = .audioSpeech
        case "audio_transcriptions": self = .audioTranscriptions
        case "audio_translations": self = .audioTranslations
        case "rerank": self = .rerank
        case "cohere_rerank": self = .cohereRerank
        case "other": self = .other
        default: return nil
        }
    }
}

/// A request whose body has been read and whose route is known.
public struct RoutedRequest: Sendable, Equatable {
    public var summary: RequestSummary
    /// The value for the `x-sluice-route` header.
    public var route: String
}

/// A reply the gateway sends itself instead of forwarding.
public struct LocalReply: Sendable, Equatable {
    public var status: UInt32
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Envoy response-code details (no spaces), visible in access logs as %RESPONSE_CODE_DETAILS%.
    public var details: StaticString

    public static func == (lhs: LocalReply, rhs: LocalReply) -> Bool {
        lhs.status == rhs.status && lhs.body == rhs.body
            && lhs.headers.elementsEqual(rhs.headers, by: { $0.name == $1.name && $0.value == $1.value })
            && lhs.details.description == rhs.details.description
    }

    public static func json(status: UInt32, body: [UInt8], details: StaticString, extraHeaders: [(name: String, value: String)] = [])
        -> LocalReply
    {
        LocalReply(status: status, headers: [("content-type", "application/json")] + extraHeaders, body: body, details: details)
    }

    public static func error(_ error: GatewayError, for api: ClientAPI, details: StaticString) -> LocalReply {
        var extra: [(name: String, value: String)] = []
        if error.status == 401 { extra.append(("www-authenticate", "Bearer realm=\"sluice\"")) }
        return json(status: error.status, body: error.body(for: api), details: details, extraHeaders: extra)
    }
}

/// What to do with a request once its headers have been read.
public enum RequestDecision: Sendable, Equatable {
    /// Pass the request on for `consumer` (client credentials are stripped by the binding).
    case forward(consumer: Consumer, endpoint: Endpoint)
    /// Answer locally.
    case reply(LocalReply, outcome: Outcome)
    /// Answer `GET /v1/models` locally for an authorised `consumer` (whose rate-limit headers the
    /// binding adds, as on every response).
    case listModels(LocalReply, consumer: Consumer)

    public enum Outcome: String, Sendable, Equatable {
        case unauthorized
    }
}

/// The request headers the gateway decides on, as raw bytes.
public struct RequestHead: Sendable {
    // Slices: the filter reads all four values into one buffer of its worker's.
    public var method: ArraySlice<UInt8>
    public var path: ArraySlice<UInt8>
    public var authorization: ArraySlice<UInt8>?
    public var apiKey: ArraySlice<UInt8>?
    /// The JWT payload header value jwt_authn appended for a token it verified in this request;
    /// the binding sets it only with that proof (see JWTIdentity.swift).
    public var verifiedJWTPayload: [UInt8]?

    public init(
        method: [UInt8], path: [UInt8], authorization: [UInt8]? = nil, apiKey: [UInt8]? = nil,
        verifiedJWTPayload: [UInt8]? = nil
    ) {
        self.method = method[...]
        self.path = path[...]
        self.authorization = authorization?[...]
        self.apiKey = apiKey?[...]
        self.verifiedJWTPayload = verifiedJWTPayload
    }

    /// The values as slices of a buffer the caller reuses.
    public init(
        method: ArraySlice<UInt8>, path: ArraySlice<UInt8>, authorization: ArraySlice<UInt8>?, apiKey: ArraySlice<UInt8>?
    ) {
        self.method = method
        self.path = path
        self.authorization = authorization
        self.apiKey = apiKey
        self.verifiedJWTPayload = nil
    }
}

/// An immutable, compiled config snapshot shared by every worker.
public final class Gateway: Sendable {
    public let config: GatewayConfig
    let keys: ClientKeyTable
    let modelListBody: [UInt8]
    let router: ModelRouter
    /// Quota counters of every limited key, team and model, shared by all workers.
    public let quotas: LocalQuotaStore

    /// - Parameters:
    ///   - config: The parsed filter config this snapshot compiles.
    ///   - quotaRegistry: counters that outlive this config (the module passes its process-wide
    ///     one), so a config update does not hand out a fresh budget.
    ///   - leaseBook: the process's fleet lease book, when the background worker runs with
    ///     leases.
    ///   - leaseClock: The monotonic clock (nanoseconds) the lease book's expiries are timed on.
    public init(
        config: GatewayConfig, quotaRegistry: QuotaCounterRegistry = QuotaCounterRegistry(), leaseBook: LeaseBook? = nil,
        leaseClock: @escaping @Sendable () -> Int64 = { 0 }
    ) {
        self.config = config
        keys = ClientKeyTable(config.apiKeys)
        modelListBody = ModelList.render(config.models)
        router = ModelRouter(config.routingRules)
        var limits: [QuotaScope: QuotaLimits] = [:]
        for key in config.apiKeys where !key.limits.isEmpty { limits[.key(key.name)] = key.limits }
        for (team, teamLimits) in config.teamLimits where !teamLimits.isEmpty { limits[.team(team)] = teamLimits }
        for (model, modelLimits) in config.modelLimits where !modelLimits.isEmpty { limits[.model(model)] = modelLimits }
        quotas = LocalQuotaStore(
            limits: limits, subjectLimits: config.jwt?.limits, subjectCapacity: config.jwt?.maxSubjects ?? 0,
            registry: quotaRegistry,
            leases: leaseBook.map {
                QuotaLeaseOptions(
                    book: $0, failure: config.leaseFailure, defaultFailure: config.defaultLeaseFailure,
                    monotonicNanos: leaseClock)
            })
    }

    /// What a routed request is admitted against.
    public func quotaRequest(for request: RoutedRequest, consumer: Consumer, bodyByteCount: Int) -> QuotaRequest {
        let estimate = QuotaEstimate(
            bodyByteCount: bodyByteCount, maxTokens: request.summary.maxTokens.map { Int(clamping: $0) },
            defaultMaxTokens: config.defaultOutputTokensEstimate, price: config.prices.price(for: request.summary.model))
        return QuotaRequest(
            key: consumer.name, team: consumer.team, model: request.summary.model, estimate: estimate,
            keyIsSubject: consumer.isSubject)
    }

    /// The `x-ratelimit-*` headers for `consumer` now (Unix milliseconds): its key's and team's
    /// counters, and the model's when one is known. Nothing is reserved.
    public func rateLimitHeaders(for consumer: Consumer, model: String?, now: Int64) -> RateLimitHeaders {
        quotas.rateLimitHeaders(
            key: consumer.name, keyIsSubject: consumer.isSubject, team: consumer.team, model: model, now: now)
    }

    /// Largest body the gateway buffers before routing.
    public var maxRequestBytes: Int { config.maxRequestBytes }

    /// Request header names that routing rules look at.
    public var routingHeaderNames: Set<String> { router.headerNames }

    /// Reads the buffered body of an authorised request and picks its route.
    /// - Parameters:
    ///   - body: The complete request body.
    ///   - endpoint: The client endpoint the path named (it decides how the body is read).
    ///   - consumer: The authenticated caller, whose allowed models are checked.
    ///   - header: Reads a request header by lower-case name.
    public func route(
        body: [UInt8], endpoint: Endpoint, consumer: Consumer, header: (String) -> String?
    ) -> Result<RoutedRequest, GatewayError> {
        var summary: RequestSummary
        do {
            summary =
                endpoint.readsMultipart
                ? try MediaEndpoints.summary(multipart: body, contentType: header("content-type"))
                : try RequestSummary.read(body, endpoint: endpoint)
        } catch {
            return .failure(error)
        }
        if endpoint.isMedia { summary.maxTokens = MediaEndpoints.outputEstimate(endpoint, body: body) }
        guard consumer.mayUse(model: summary.model) else { return .failure(.modelNotAllowed(summary.model)) }
        guard let route = router.route(model: summary.model, header: header) else {
            return .failure(.modelNotFound(summary.model))
        }
        return .success(RoutedRequest(summary: summary, route: route))
    }

    /// Authenticates the request and answers what the gateway answers itself.
    /// - Parameters:
    ///   - head: The request's method, path and credentials.
    ///   - now: Unix seconds, for key expiry.
    public func decide(_ head: RequestHead, now: Int64 = 0) -> RequestDecision {
        let endpoint = Endpoint.classify(method: head.method, path: head.path)
        let api = endpoint.clientAPI

        // A token jwt_authn verified for this request decides alone; API keys stay possible
        // unless the config requires a token.
        if let jwt = config.jwt {
            if let payload = head.verifiedJWTPayload {
                switch jwt.consumer(payloadHeader: payload) {
                case .success(let consumer): return accept(consumer, endpoint)
                case .failure(let error):
                    return .reply(.error(error, for: api, details: "sluice_invalid_token"), outcome: .unauthorized)
                }
            }
            if jwt.required {
                return .reply(.error(.missingToken(), for: api, details: "sluice_missing_token"), outcome: .unauthorized)
            }
        }

        // A Bearer token wins; `x-api-key` is the Anthropic SDK's header.
        let check: KeyCheck
        if let authorization = head.authorization, let token = ClientKeyExtractor.bearerTokenRange(authorization.span) {
            check = keys.check(authorization.span.extracting(token), now: now)
        } else if let apiKey = head.apiKey, !apiKey.isEmpty {
            check = keys.check(apiKey.span, now: now)
        } else {
            return .reply(.error(.missingKey(), for: api, details: "sluice_missing_api_key"), outcome: .unauthorized)
        }
        switch check {
        case .accepted(let consumer):
            return accept(consumer, endpoint)
        case .missing:
            return .reply(.error(.missingKey(), for: api, details: "sluice_missing_api_key"), outcome: .unauthorized)
        case .invalid:
            return .reply(.error(.invalidKey(), for: api, details: "sluice_invalid_api_key"), outcome: .unauthorized)
        case .revoked:
            return .reply(.error(.revokedKey(), for: api, details: "sluice_api_key_revoked"), outcome: .unauthorized)
        case .expired:
            return .reply(.error(.expiredKey(), for: api, details: "sluice_api_key_expired"), outcome: .unauthorized)
        }
    }

    private func accept(_ consumer: Consumer, _ endpoint: Endpoint) -> RequestDecision {
        if endpoint == .listModels {
            return .listModels(.json(status: 200, body: modelListBody, details: "sluice_models_listed"), consumer: consumer)
        }
        return .forward(consumer: consumer, endpoint: endpoint)
    }
}
